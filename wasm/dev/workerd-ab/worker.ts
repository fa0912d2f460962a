// Throwaway: the mat-vec benchmark's measurement in workerd for two builds, wasm/build (new) and
// wasm/dev/build/old-* (before), wasm/dev/build/cand-* (a candidate: copy any variant's build there), case by case alternately. Driven by run.ts.
import { BenchContext } from '../../../bench/matvec/executors';
import type { CaseSpec, MeasureOptions } from '../../../bench/matvec/measure';
import relaxedNew from '../../build/kernels-relaxed.wasm';
import simdNew from '../../build/kernels-simd.wasm';
import relaxedOld from '../build/old-relaxed.wasm';
import simdOld from '../build/old-simd.wasm';
import relaxedCand from '../build/cand-relaxed.wasm';
import simdCand from '../build/cand-simd.wasm';

const ctx = { new: new BenchContext({ simd: simdNew, relaxed: relaxedNew }), old: new BenchContext({ simd: simdOld, relaxed: relaxedOld }), cand: new BenchContext({ simd: simdCand, relaxed: relaxedCand }) };

export default {
  async fetch(request: Request): Promise<Response> {
    const { which, spec, opts } = (await request.json()) as { which: 'new' | 'old' | 'cand'; spec: CaseSpec; opts: MeasureOptions };
    return Response.json(ctx[which].measure(spec, opts, () => performance.now()));
  },
} satisfies ExportedHandler;
