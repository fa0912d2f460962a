// The e2e benchmark's Worker (never deployed): receives a model's objects (PUT /object/<name>), loads it with
// the Worker's kernels (relaxed SIMD where validated, as src/runtime/load-model.ts does) and runs timed
// rounds (POST /round, with the KV cache type). Driven by bench/e2e/workerd.ts. Local only: a granite-sized model
// (~0.8-1.5 GB of heap) is far above a deployed isolate's 128 MB (https://developers.cloudflare.com/workers/platform/limits/#memory);
// local workerd enforces no memory limit, so this measures the kernels and engine in workerd, not a deployable setup.
import type { KvCacheType } from '../../src/engine/kv-cache';
import { loadTextModel, type LocalModel } from '../../src/engine/load';
import { createWasmKernels } from '../../src/kernels/wasm';
import { kernelsLabel } from '../../src/kernels/fused-dot';
import { supportsRelaxedSimd } from '../../src/kernels/wasm-features';
import { engineRound, memorySource } from './engine-round';
import relaxedModule from '../../wasm/build/kernels-relaxed.wasm';
import simdModule from '../../wasm/build/kernels-simd.wasm';

const objects = new Map<string, Uint8Array>();
let model: LocalModel | null = null;

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname.startsWith('/object/') && request.method === 'PUT') {
      objects.set(decodeURIComponent(url.pathname.slice('/object/'.length)), new Uint8Array(await request.arrayBuffer()));
      return new Response('ok');
    }
    if (url.pathname === '/load' && request.method === 'POST') {
      const relaxed = supportsRelaxedSimd();
      // ?fusedDot=0|1 forces the relaxed build's integer-dot path (A/B of src/kernels/fused-dot.ts); default the engine's
      const forced = url.searchParams.get('fusedDot');
      const fusedDot = forced === null ? undefined : forced === '1';
      const kernels = relaxed ? createWasmKernels(relaxedModule, 'relaxed', { fusedDot }) : createWasmKernels(simdModule, 'simd');
      model = await loadTextModel(memorySource(objects), kernels);
      objects.clear(); // the weights are in the heap now: a granite-sized model would otherwise be held twice
      return Response.json({ kernels: kernelsLabel(kernels) });
    }
    if (url.pathname === '/round' && request.method === 'POST') {
      if (!model) return new Response('load first', { status: 409 });
      const { prompt, decode, kvType } = (await request.json()) as { prompt: number[]; decode: number; kvType?: KvCacheType };
      // local workerd's clock advances in whole ms during execution: rounds are tens to hundreds of ms
      return Response.json(await engineRound(model, prompt, decode, () => performance.now(), kvType));
    }
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler;
