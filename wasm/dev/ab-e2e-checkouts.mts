// Throwaway: one model end to end (prefill, then greedy decode) on two checkouts (each its own JS and wasm/build),
// interleaved rounds. Run: ROOTS=/path/old,/path/new MODEL=dir [P=128] [D=64] [R=5] npx tsx wasm/dev/ab-e2e-checkouts.mts
const roots = (process.env.ROOTS ?? "").split(",");
if (roots.length !== 2) throw new Error("ROOTS=/path/old,/path/new: two checkouts with wasm/build built");
const dir = process.env.MODEL ?? '/work/main/.cache/models/granite-shaped-q4_0';
const P = +(process.env.P ?? 128), D = +(process.env.D ?? 64), R = +(process.env.R ?? 5);
const engines = [];
for (const root of roots) {
  const { loadTextModel } = await import(`${root}/src/engine/load.ts`);
  const { fsSource } = await import(`${root}/src/store/source-fs.ts`);
  const { loadNodeKernelModules } = await import(`${root}/src/kernels/load-node.ts`);
  const { createWasmKernels } = await import(`${root}/src/kernels/wasm.ts`);
  const { engineRound } = await import(`${root}/bench/e2e/engine-round.ts`);
  const modules = await loadNodeKernelModules();
  const m = await loadTextModel(fsSource(dir), createWasmKernels(modules.relaxed, 'relaxed'));
  engines.push({ root, round: (prompt: number[], d: number) => engineRound(m, prompt, d, () => performance.now()) });
}
const prompt = Array.from({ length: P }, (_, i) => 3 + ((i * 37) % 1000));
for (const e of engines) await e.round(prompt, 4);
const rp: number[] = [], rd: number[] = []; let toks: number[][] = [];
for (let r = 0; r < R; r++) {
  const x = await engines[0].round(prompt, D), y = await engines[1].round(prompt, D);
  rp.push(x.prefillMs / y.prefillMs); rd.push(x.decodeMs / y.decodeMs); toks = [x.tokens, y.tokens];
  console.log(`round ${r}: decode ${(D / x.decodeMs * 1e3).toFixed(1)} vs ${(D / y.decodeMs * 1e3).toFixed(1)} tok/s, prefill ${(P / x.prefillMs * 1e3).toFixed(1)} vs ${(P / y.prefillMs * 1e3).toFixed(1)}`);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`${roots[1]} vs ${roots[0]} (time ratio, >1 = faster): prefill ${med(rp).toFixed(3)}x, decode ${med(rd).toFixed(3)}x; same tokens: ${JSON.stringify(toks[0]) === JSON.stringify(toks[1])}`);
