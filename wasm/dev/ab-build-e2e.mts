// Throwaway: one model's prefill/decode in Node on two builds of kernels-relaxed.wasm, interleaved (the JS is the
// same). Run: OLD=dir NEW=dir [KV=f32|f16|q8_0|q4_0] npx tsx wasm/dev/ab-build-e2e.mts <model dir> [prompt] [decode] [rounds]
import { readFileSync } from 'node:fs';
import { loadTextModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { createWasmKernels } from '../../src/kernels/wasm';
import { engineRound } from '../../bench/e2e/engine-round';
import type { KvCacheType } from '../../src/engine/kv-cache';
const kv = (process.env.KV ?? 'f32') as KvCacheType;
const [dir, P = '128', D = '128', R = '10'] = process.argv.slice(2);
const models = await Promise.all(['OLD', 'NEW'].map((e) => loadTextModel(fsSource(dir), createWasmKernels(new WebAssembly.Module(readFileSync(`${process.env[e]}/kernels-relaxed.wasm`)), 'relaxed'))));
const prompt = Array.from({ length: +P }, (_, i) => 3 + ((i * 37) % 1000));
for (const m of models) await engineRound(m, prompt, 8, () => performance.now(), kv);
const ratio = { p: [] as number[], d: [] as number[] };
for (let r = 0; r < +R; r++) {
  const x = await engineRound(models[0], prompt, +D, () => performance.now(), kv);
  const y = await engineRound(models[1], prompt, +D, () => performance.now(), kv);
  ratio.p.push(x.prefillMs / y.prefillMs); ratio.d.push(x.decodeMs / y.decodeMs);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`new vs old (time ratio old/new, >1 = new faster): prefill ${med(ratio.p).toFixed(3)}x, decode ${med(ratio.d).toFixed(3)}x`);
