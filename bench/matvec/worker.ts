// workerd half of the mat-vec benchmark: a Worker that imports the two kernel modules and runs one case per
// request (POST /case), with the measurement code Node uses (measure.ts). Driven by workerd.ts.
import { supportsRelaxedSimd } from '../../src/kernels/wasm-features';
import { availableExecutors, BenchContext } from './executors';
import type { CaseSpec, MeasureOptions } from './measure';
// wrangler turns .wasm imports into compiled WebAssembly.Module objects (compiling bytes at run time is forbidden).
import relaxedModule from '../../wasm/build/kernels-relaxed.wasm';
import simdModule from '../../wasm/build/kernels-simd.wasm';

// Module scope: the executors' memories and the streaming buffer live for the isolate, across requests.
const ctx = new BenchContext({ simd: simdModule, relaxed: supportsRelaxedSimd() ? relaxedModule : null });

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/executors') return Response.json(availableExecutors(ctx.modules));
    if (url.pathname === '/case' && request.method === 'POST') {
      const { spec, opts } = (await request.json()) as { spec: CaseSpec; opts: MeasureOptions };
      // performance.now() advances inside a synchronous loop in local workerd, in whole milliseconds
      return Response.json(ctx.measure(spec, opts, () => performance.now()));
    }
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler;
