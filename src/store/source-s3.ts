// ObjectSource over an S3-compatible API (R2 from outside Cloudflare, for the GPU backend): path-style URLs
// `<endpoint>/<bucket>/<prefix>/<name>`, SigV4 through aws4fetch, ranged GETs. Runs on Node and in workers.
import { AwsClient } from 'aws4fetch';
import { ObjectNotFoundError } from '../common/errors';
import { bodyChunks, checkObjectName, checkRange, ShortReadError, type ObjectSource } from './source';

export interface S3SourceOptions {
  /** e.g. https://<account>.r2.cloudflarestorage.com */
  endpoint: string;
  bucket: string;
  /** the model's prefix inside the bucket, e.g. `models/default` */
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** R2 takes `auto` (the default) */
  region?: string;
  /** retries on 5xx / 429 with backoff (aws4fetch) */
  retries?: number;
}

/** What reads (s3Source) and writes (s3Sink in sink-s3.ts) share: the signing client and the URL of a name. */
export interface S3Endpoint {
  readonly client: AwsClient;
  /** path-style URL of a model object (the name checked against escaping the prefix) */
  url(name: string): string;
  /** s3://<bucket>/<prefix>, for messages */
  readonly where: string;
  /** an error for a refused request: ObjectNotFoundError for 404, else the status and body */
  failed(name: string, res: Response): Promise<Error>;
}

export function s3Endpoint(opts: S3SourceOptions): S3Endpoint {
  const client = new AwsClient({
    accessKeyId: opts.accessKeyId,
    secretAccessKey: opts.secretAccessKey,
    service: 's3',
    region: opts.region ?? 'auto',
    retries: opts.retries ?? 3,
  });
  const endpoint = opts.endpoint.replace(/\/+$/, '');
  const base = opts.prefix.replace(/^\/+|\/+$/g, '');
  const where = `s3://${opts.bucket}/${base}`;
  return {
    client,
    where,
    url(name) {
      checkObjectName(name);
      const key = base ? `${base}/${name}` : name;
      return `${endpoint}/${encodeURIComponent(opts.bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
    },
    async failed(name, res) {
      const body = (await res.text().catch(() => '')).slice(0, 300);
      if (res.status === 404) return new ObjectNotFoundError(name, where);
      return new Error(`${where}/${name}: S3 answered ${res.status} ${res.statusText} ${body}`.trim());
    },
  };
}

export function s3Source(opts: S3SourceOptions): ObjectSource {
  const { client, url, where, failed } = s3Endpoint(opts);
  return {
    async get(name) {
      const res = await client.fetch(url(name));
      if (!res.ok) throw await failed(name, res);
      return new Uint8Array(await res.arrayBuffer());
    },
    async getRange(name, offset, length) {
      checkRange(offset, length);
      if (length === 0) {
        const res = await client.fetch(url(name), { method: 'HEAD' });
        if (!res.ok) throw await failed(name, res);
        return new Uint8Array(0);
      }
      const res = await client.fetch(url(name), { headers: { range: `bytes=${offset}-${offset + length - 1}` } });
      if (res.status === 416) throw new ShortReadError(name, offset, length, 0, where);
      if (!res.ok) throw await failed(name, res);
      const bytes = new Uint8Array(await res.arrayBuffer());
      // a server that ignores Range answers 200 with the whole object
      const got = res.status === 206 ? bytes : bytes.subarray(offset, offset + length);
      if (got.length !== length) throw new ShortReadError(name, offset, length, got.length, where);
      return got;
    },
    async *stream(name) {
      const res = await client.fetch(url(name));
      if (!res.ok) throw await failed(name, res);
      if (!res.body) return; // an empty object
      yield* bodyChunks(res.body);
    },
    describe: () => where,
  };
}
