// Throwaway: where a forward pass's time goes, as a V8 CPU profile of prefill + decode rounds (wasm functions by
// index: map them with wasm/build/kernels-relaxed.wat). Run: node --cpu-prof --cpu-prof-dir=DIR --import tsx wasm/dev/profile-decode.mts <model dir> [prompt] [decode]
import { readFileSync } from 'node:fs';
import { loadTextModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { createWasmKernels } from '../../src/kernels/wasm';
import { engineRound } from '../../bench/e2e/engine-round';
const [dir, P = '128', D = '128'] = process.argv.slice(2);
const m = await loadTextModel(fsSource(dir), createWasmKernels(new WebAssembly.Module(readFileSync('wasm/build/kernels-relaxed.wasm')), 'relaxed'));
const prompt = Array.from({ length: +P }, (_, i) => 3 + ((i * 37) % 1000));
for (let r = 0; r < 3; r++) {
  const x = await engineRound(m, prompt, +D, () => performance.now());
  console.log(`prefill ${(+P / x.prefillMs * 1000).toFixed(1)} tok/s, decode ${(+D / x.decodeMs * 1000).toFixed(1)} tok/s`);
}
