// Throwaway: the engine in local workerd on fused dots vs the i16 path, same model, two Workers, interleaved rounds.
// MODEL=.cache/models/granite-shaped-q4_0 P=128 D=64 R=8 npx tsx wasm/dev/ab-fused-workerd.mts
import { startWorkerdEngine } from '../../bench/e2e/workerd';
const dir = process.env.MODEL ?? '.cache/models/granite-shaped-q4_0';
const P = Number(process.env.P ?? 128), D = Number(process.env.D ?? 64), R = Number(process.env.R ?? 4);
const engines = [await startWorkerdEngine(dir, false), await startWorkerdEngine(dir, true)];
console.log(engines.map((e) => e.kernels).join(' vs '));
const prompt = Array.from({ length: P }, (_, i) => 100 + ((i * 37) % 5000));
await engines[0].round(prompt.slice(0, 8), 4); await engines[1].round(prompt.slice(0, 8), 4);
const pre: number[][] = [[], []], dec: number[][] = [[], []];
for (let r = 0; r < R; r++) for (let i = 0; i < 2; i++) {
  const x = await engines[i].round(prompt, D);
  pre[i].push(P / x.prefillMs * 1000); dec[i].push(D / x.decodeMs * 1000);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`prefill tok/s i16 ${med(pre[0]).toFixed(1)} fused ${med(pre[1]).toFixed(1)} (${(med(pre[1]) / med(pre[0])).toFixed(2)}x)`);
console.log(`decode  tok/s i16 ${med(dec[0]).toFixed(1)} fused ${med(dec[1]).toFixed(1)} (${(med(dec[1]) / med(dec[0])).toFixed(2)}x)`);
console.log('per round ratios decode', dec[1].map((v, i) => (v / dec[0][i]).toFixed(2)).join(' '), 'prefill', pre[1].map((v, i) => (v / pre[0][i]).toFixed(2)).join(' '));
for (const e of engines) await e.dispose();
