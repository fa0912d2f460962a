// Node's source of xgrammar's WASM (tests, CLI, benchmarks): wasm/build/xgrammar.wasm compiled from the file.
import { readFile } from 'node:fs/promises';
import { provideXgrammarWasm } from './wasm-source';

export function provideXgrammarWasmFromFile(): void {
  provideXgrammarWasm(async () => {
    const url = new URL('../../wasm/build/xgrammar.wasm', import.meta.url);
    try {
      return await WebAssembly.compile(await readFile(url));
    } catch (e) {
      throw new Error(`xgrammar: cannot read wasm/build/xgrammar.wasm; run \`npm run build:wasm\` first (${(e as Error).message})`);
    }
  });
}
