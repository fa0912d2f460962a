// Throwaway: granite-shaped e2e prefill/decode, ggml layout vs packed q4_0, interleaved in one process.
// Run: npx tsx wasm/dev/ab-packed-e2e.mts .cache/models/granite-shaped-q4_0 [prompt] [decode] [rounds]
import { loadTextModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { makeKernels } from '../../tools/kernels-node';
import { engineRound } from '../../bench/e2e/engine-round';
const [dir, P = '128', D = '32', R = '3'] = process.argv.slice(2);
const flat = await makeKernels(); (flat as { packWeights?: unknown }).packWeights = undefined;
const packed = await makeKernels();
const models = { flat: await loadTextModel(fsSource(dir), flat), packed: await loadTextModel(fsSource(dir), packed) };
const prompt = Array.from({ length: +P }, (_, i) => 100 + ((i * 7919) % 20000));
for (const m of Object.values(models)) await engineRound(m, prompt.slice(0, 16), 4, () => performance.now());
const res: Record<string, { p: number[]; d: number[] }> = { flat: { p: [], d: [] }, packed: { p: [], d: [] } };
for (let r = 0; r < +R; r++) for (const [name, m] of Object.entries(models)) {
  const x = await engineRound(m, prompt, +D, () => performance.now());
  res[name].p.push(+P / x.prefillMs * 1000); res[name].d.push(+D / x.decodeMs * 1000);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [n, v] of Object.entries(res)) console.log(`${n}: prefill ${med(v.p).toFixed(1)} tok/s, decode ${med(v.d).toFixed(1)} tok/s`);
console.log(`packed/flat: prefill ${(med(res.packed.p.map((x, i) => x / res.flat.p[i]))).toFixed(2)}x, decode ${(med(res.packed.d.map((x, i) => x / res.flat.d[i]))).toFixed(2)}x`);
