// Throwaway: one kernel measurement in local workerd (granite's expert FFN, or the streaming read), for run.ts.
import { BenchContext, makeStreamReader } from '../../../bench/matvec/executors';
import { prepareStream, type Executor, type Quant, type StreamReader } from '../../../bench/matvec/measure';
import { measureFfn } from '../../../bench/kernels/ffn';
import relaxed from '../../build/kernels-relaxed.wasm';
import simd from '../../build/kernels-simd.wasm';
const ctx = new BenchContext({ simd, relaxed });
const SB = 64 * 2 ** 20;
let sp = -1;
let reader: StreamReader;
export default {
  async fetch(request: Request): Promise<Response> {
    const { quant, batch, executor } = (await request.json()) as { quant: Quant; batch: number; executor: Executor };
    if (sp < 0) { reader = makeStreamReader(ctx.modules); sp = prepareStream(reader, SB); }
    const k = ctx.executor(executor);
    const r = measureFfn(k, reader, sp, SB, quant, { model: 'granite', hidden: 1024, inter: 512 }, batch, { rounds: 3, minMs: 300, slices: 3, poolBytes: 64 * 2 ** 20 }, () => performance.now());
    return Response.json({ gbps: Math.max(...r.gbps), stream: Math.max(...r.streamGbps) });
  },
} satisfies ExportedHandler;
