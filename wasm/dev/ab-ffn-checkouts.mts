// Throwaway: granite's expert FFN on two checkouts (each its own JS and wasm/build), interleaved, weights out of cache,
// as GB/s and ratio to a streaming read in the same rounds. Run: ROOTS=/path/old,/path/new [Q=q4_0] [BATCHES=1,4] [R=3] npx tsx wasm/dev/ab-ffn-checkouts.mts
const roots = (process.env.ROOTS ?? "").split(",");
if (roots.length !== 2) throw new Error("ROOTS=/path/old,/path/new: two checkouts with wasm/build built");
const Q = (process.env.Q ?? 'q4_0') as 'q4_0';
const B = (process.env.BATCHES ?? '1').split(',').map(Number);
const setups = [];
for (const root of roots) {
  const { loadNodeKernelModules } = await import(`${root}/src/kernels/load-node.ts`);
  const { createWasmKernels } = await import(`${root}/src/kernels/wasm.ts`);
  const { makeStreamReader } = await import(`${root}/bench/matvec/executors.ts`);
  const { prepareStream } = await import(`${root}/bench/matvec/measure.ts`);
  const { measureFfn } = await import(`${root}/bench/kernels/ffn.ts`);
  const modules = await loadNodeKernelModules();
  const stream = makeStreamReader(modules);
  const SB = 64 * 2 ** 20; const sp = prepareStream(stream, SB);
  const k = createWasmKernels(modules.relaxed, 'relaxed', { maximumPages: 16384 });
  setups.push({ root, run: (batch: number) => measureFfn(k, stream, sp, SB, Q, { model: 'granite', hidden: 1024, inter: 512 }, batch, { rounds: 3, minMs: 200, slices: 3, poolBytes: 64 * 2 ** 20 }, () => performance.now()) });
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const batch of B) {
  const r: number[][] = setups.map(() => []), g: number[][] = setups.map(() => []);
  for (let i = 0; i < +(process.env.R ?? 3); i++) setups.forEach((s, j) => { const x = s.run(batch); r[j].push(med(x.gbps.map((v: number, k: number) => v / x.streamGbps[k]))); g[j].push(med(x.gbps)); });
  console.log(`${Q} B=${batch}: ` + setups.map((s, j) => `${s.root} ${med(g[j]).toFixed(2)} GB/s ${med(r[j]).toFixed(3)} of stream`).join(' | ') + ` -> ${(med(r[1]) / med(r[0])).toFixed(2)}x`);
}
