// wllama (llama.cpp compiled to WebAssembly) as a peer. It needs a Web Worker (and JSPI and memory64), which Node
// lacks, so it runs in headless Chromium (Debian's /usr/bin/chromium through the root's playwright-core),
// loaded from a loopback server that serves wllama's files, the GGUF and bench/peers/wllama-page.html.
import { existsSync, createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const PAGE = fileURLToPath(new URL('./wllama-page.html', import.meta.url));
const WLLAMA = fileURLToPath(new URL('./node_modules/@wllama/wllama/esm/', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why wllama cannot run here, or null when it can. */
export function wllamaUnavailable(): string | null {
  if (!existsSync(`${WLLAMA}index.js`)) return '@wllama/wllama is not installed (npm run setup:peers)';
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
  return null;
}

export interface WllamaRoundResult { prefillMs: number; decodeMs: number; promptTokens: number; decodedTokens: number }

export interface WllamaPeer {
  version: string;
  round(prompt: string, decode: number): Promise<WllamaRoundResult>;
  dispose(): Promise<void>;
}

function serve(gguf: string): Promise<Server> {
  const files: Record<string, [string, string]> = {
    '/': [PAGE, 'text/html'],
    '/model.gguf': [gguf, 'application/octet-stream'],
    '/wllama/index.js': [`${WLLAMA}index.js`, 'text/javascript'],
    '/wllama/wasm/wllama.wasm': [`${WLLAMA}wasm/wllama.wasm`, 'application/wasm'],
  };
  const server = createServer((req, res) => {
    const f = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!f) return void res.writeHead(404).end();
    // cross-origin isolation, as wllama's docs ask for (only its multi-thread build needs it)
    res.writeHead(200, { 'content-type': f[1], 'content-length': statSync(f[0]).size, 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    createReadStream(f[0]).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

/** kvCacheType: llama.cpp's -ctk/-ctv (default f32); a quantized V cache needs flashAttention. batch: n_batch (default 512). */
export interface WllamaOptions { kvCacheType?: 'f32' | 'f16' | 'q8_0' | 'q4_0'; flashAttention?: boolean; batch?: number }

export async function startWllama(gguf: string, nCtx: number, opts: WllamaOptions = {}): Promise<WllamaPeer> {
  const why = wllamaUnavailable();
  if (why) throw new Error(`wllama: ${why}`);
  const server = await serve(gguf);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 30_000 }).catch(() => {
      throw new Error(`wllama page did not load: ${errors.join('; ')}`);
    });
    const info = await page.evaluate(([n, o]) => (window as unknown as { loadModel(n: number, o: WllamaOptions): Promise<{ version: string; threads: number; multithread: boolean }> }).loadModel(n, o), [nCtx, opts] as const);
    if (info.multithread || info.threads !== 1) throw new Error(`wllama runs ${info.threads} threads; the comparison is single-thread`);
    return {
      version: info.version,
      async round(prompt, decode) {
        const r = await page.evaluate(([p, n]) => (window as unknown as { round(p: string, n: number): Promise<{ timings: Record<string, number> }> }).round(p, n), [prompt, decode] as const);
        const t = r.timings;
        return { prefillMs: t.prompt_ms, decodeMs: t.predicted_ms, promptTokens: t.prompt_n, decodedTokens: t.predicted_n };
      },
      async dispose() {
        await browser.close();
        server.close();
      },
    };
  } catch (e) {
    await browser.close();
    server.close();
    throw e;
  }
}
