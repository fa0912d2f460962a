// A small S3-compatible object store on loopback, in memory, for the upload tests: path-style PUT / HEAD / GET /
// DELETE, x-amz-meta-* metadata, the SigV4 Authorization shape checked, and x-amz-content-sha256 checked
// against the body as S3 and R2 do. Faults on demand: PUTs of chosen keys answer 500.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredEntry {
  body: Buffer;
  meta: Record<string, string>;
}

export interface S3TestServer {
  readonly endpoint: string;
  /** bucket/key -> object */
  readonly objects: Map<string, StoredEntry>;
  /** every request, in arrival order */
  readonly log: { method: string; key: string }[];
  /** keys (bucket/key) whose PUT answers 500 until removed */
  readonly failPuts: Set<string>;
  close(): Promise<void>;
}

export async function startS3Server(accessKeyId: string): Promise<S3TestServer> {
  const objects = new Map<string, StoredEntry>();
  const log: { method: string; key: string }[] = [];
  const failPuts = new Set<string>();
  const server: Server = createServer((req, res) => {
    const key = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\//, '');
    const method = req.method ?? '';
    log.push({ method, key });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!(req.headers.authorization ?? '').startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`) || !req.headers['x-amz-date']) {
        res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
        return;
      }
      const entry = objects.get(key);
      if (method === 'PUT') {
        const body = Buffer.concat(chunks);
        if (failPuts.has(key)) {
          res.writeHead(500).end('<Error><Code>InternalError</Code></Error>');
          return;
        }
        const claimed = req.headers['x-amz-content-sha256'];
        if (claimed !== 'UNSIGNED-PAYLOAD' && claimed !== createHash('sha256').update(body).digest('hex')) {
          res.writeHead(400).end('<Error><Code>XAmzContentSHA256Mismatch</Code></Error>');
          return;
        }
        const meta = Object.fromEntries(Object.entries(req.headers).filter(([h]) => h.startsWith('x-amz-meta-')).map(([h, v]) => [h, String(v)]));
        objects.set(key, { body, meta });
        res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` }).end();
        return;
      }
      if (method === 'DELETE') {
        objects.delete(key);
        res.writeHead(204).end();
        return;
      }
      if (!entry) {
        res.writeHead(404).end(method === 'HEAD' ? undefined : '<Error><Code>NoSuchKey</Code></Error>');
        return;
      }
      res.writeHead(200, { 'content-length': entry.body.length, ...entry.meta }).end(method === 'HEAD' ? undefined : entry.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    objects,
    log,
    failPuts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
