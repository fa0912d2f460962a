// The WebGPU executor of the conformance suite: the suite's cases of every kernel the device runs (matmul, ffnSwiglu
// and the trunk's rmsNorm, rope, attention over an f32 cache, softmax, topK, addScaled; same data, same tolerances)
// on the WGSL kernels of gpu-backend/devices/webgpu, then the `webgpu` ExpertDevice against ts-ref and
// the cpu device. CI runs it on a software adapter (tools/setup-lavapipe.sh) and fails, not skips, without one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuDevice } from '../../../gpu-backend/devices/cpu';
import type { ExpertDevice, ExpertEntries, ExpertGroup } from '../../../gpu-backend/devices/device';
import { acquireGpu } from '../../../gpu-backend/devices/webgpu/adapter';
import { createWebGpuDevice, type WebGpuExpertDevice } from '../../../gpu-backend/devices/webgpu/index';
import { WebGpuKernels } from '../../../gpu-backend/devices/webgpu/kernels';
import type { HostTensor } from '../../../gpu-backend/devices/webgpu/layout';
import { SETUP_HINT } from '../../../gpu-backend/devices/webgpu/software-adapter';
import type { TensorEntry } from '../../../src/format/manifest';
import { f32ToF16 } from '../../../src/format/quant';
import { activationsToF32, type Activations } from '../../../src/protocol/activations';
import { kvCases } from './cases-kv';
import { weightCases } from './cases-matmul';
import { opCases } from './cases-ops';
import { referenceOutputs } from './describe-executor';
import { report } from './harness';
import { isDeviceCase, recordCalls, runCase, type Call } from './webgpu/replay';

const gpu = await acquireGpu({ allowSoftware: true });
const kernels = gpu ? new WebGpuKernels(gpu) : null;
const MISSING = `no WebGPU adapter (no GPU, no lavapipe in .cache/mesa/, no EGL for Dawn's GLES backend): ${SETUP_HINT}`;
const skipReason = kernels ? undefined : MISSING;

const cases = [...weightCases(), ...opCases(), ...kvCases()].filter(isDeviceCase);

afterAll(() => {
  kernels?.destroy();
  if (process.env.CONFORMANCE_VERBOSE && report.length) console.log(report.splice(0).join('\n'));
});

describe('webgpu adapter', () => {
  // Locally a machine without an adapter skips the suite (its title says why); in CI this test fails instead.
  it.skipIf(!kernels && !process.env.CI)(`is present${process.env.CI ? ' (CI may not skip WebGPU)' : ''}`, () => {
    if (!kernels) expect.fail(MISSING);
    console.log(`webgpu conformance on ${kernels.description}`);
  });
});

describe.skipIf(skipReason !== undefined)(skipReason ? `webgpu (skipped: ${skipReason})` : 'webgpu', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const got = await runCase(kernels!, c);
      await c.verify(got, referenceOutputs(c), `webgpu: ${c.name}`);
    });
  }
});

// ---- the ExpertDevice: every ffn case becomes an expert of layer 0, and one run() call carries all of them ----

type FfnCall = Extract<Call, { op: 'ffnSwiglu' }>;

/** An expert object as the backend loads it: gate, up, down one after the other, each quants then f16 scales. */
function expertObject(call: FfnCall, layer: number, expert: number): { entries: ExpertEntries; bytes: Uint8Array } {
  const parts = [call.gate, call.up, call.down].map(shardOf);
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  const object = `experts/${layer}/${expert}.bin`;
  let offset = 0;
  const [gate, up, down] = [call.gate, call.up, call.down].map((t, i): TensorEntry => {
    bytes.set(parts[i], offset);
    const e = { object, offset, bytes: parts[i].length, dtype: t.dtype, shape: [t.rows, t.cols] };
    offset += parts[i].length;
    return e;
  });
  return { entries: { gate, up, down }, bytes };
}

function shardOf(t: HostTensor): Uint8Array {
  if (!t.scales) return t.data;
  const out = new Uint8Array(t.data.length + t.scales.length * 2);
  out.set(t.data);
  const d = new DataView(out.buffer, t.data.length);
  t.scales.forEach((s, i) => d.setUint16(i * 2, f32ToF16(s), true)); // lossless: the scales came from f16
  return out;
}

const f32 = (data: Float32Array): Activations => ({ dtype: 'f32', data });
const copy = (g: ExpertGroup): ExpertGroup => ({ ...g, x: f32(activationsToF32(g.x).slice()) });

const REPEAT = 3; // one group per case also carries its tokens three times: several tiles, the last one partial
const SLAB_BYTES = 2 << 20; // small weight buffers, so that one call spans several of them

describe.skipIf(skipReason !== undefined)(skipReason ? `webgpu ExpertDevice (skipped: ${skipReason})` : 'webgpu ExpertDevice', () => {
  const ffnCases = cases.filter((c) => c.name.startsWith('ffnSwiglu '));
  let calls: FfnCall[];
  let groups: ExpertGroup[];
  const results = new Map<string, Float32Array[]>();
  let webgpu: ExpertDevice | null = null;
  let cpu: ExpertDevice | null = null;

  beforeAll(async () => {
    calls = ffnCases.map((c) => recordCalls(c)[0] as FfnCall);
    groups = calls.flatMap((call, e) => [
      { expert: e, x: f32(call.x), n: call.n },
      { expert: e, x: f32(Float32Array.from({ length: REPEAT * call.x.length }, (_, i) => call.x[i % call.x.length])), n: REPEAT * call.n },
    ]);
    groups.push({ expert: 0, x: f32(new Float32Array(0)), n: 0 });
    const copies = () => groups.map(copy); // devices may detach x
    for (const [name, make] of [
      ['webgpu', () => createWebGpuDevice({ allowSoftware: true, slabBytes: SLAB_BYTES })],
      ['cpu', () => createCpuDevice({ threads: 2 })],
    ] as const) {
      const dev = await make();
      if (!dev) throw new Error(`${name} device: ${MISSING}`);
      if (name === 'webgpu') webgpu = dev; else cpu = dev;
      for (const [e, call] of calls.entries()) {
        const { entries, bytes } = expertObject(call, 0, e);
        await dev.loadExpert(0, e, entries, bytes);
      }
      results.set(name, await dev.run(0, copies()));
    }
  }, 600_000);

  afterAll(async () => {
    await webgpu?.close();
    await cpu?.close();
  });

  it('reports its resident weights and refuses unknown experts', async () => {
    expect(webgpu!.name).toBe('webgpu');
    expect(webgpu!.residentBytes).toBeGreaterThan(calls.reduce((s, c) => s + c.gate.data.length + c.up.data.length + c.down.data.length, 0));
    await expect(webgpu!.run(0, [{ expert: calls.length, x: f32(new Float32Array(0)), n: 0 }])).rejects.toThrow(/not loaded/);
    await expect(webgpu!.run(1, [{ expert: 0, x: f32(new Float32Array(0)), n: 0 }])).rejects.toThrow(/not loaded/);
  });

  it('spreads the experts over several weight buffers (one call reaches them all)', () => {
    expect((webgpu as WebGpuExpertDevice).slabCount).toBeGreaterThan(1);
  });

  it('runs concurrent calls independently, each as it would run alone', async () => {
    const first = groups.filter((_, i) => i % 3 === 0);
    const second = groups.filter((_, i) => i % 3 !== 0);
    const [a, b] = await Promise.all([webgpu!.run(0, first.map(copy)), webgpu!.run(0, second.map(copy))]);
    const all = results.get('webgpu')!;
    expect(a).toEqual(all.filter((_, i) => i % 3 === 0));
    expect(b).toEqual(all.filter((_, i) => i % 3 !== 0));
  });

  it('returns one result per group, an empty one for n = 0', () => {
    const got = results.get('webgpu')!;
    expect(got.map((y) => y.length)).toEqual(groups.map((g) => g.n * calls[g.expert].down.rows));
  });

  for (const [i, c] of ffnCases.entries()) {
    it(`${c.name}: one run() with every expert, vs ts-ref and the cpu device`, async () => {
      const want = referenceOutputs(c);
      const H = calls[i].down.rows;
      for (const dev of ['webgpu', 'cpu']) {
        const [once, repeated] = results.get(dev)!.slice(2 * i, 2 * i + 2);
        await c.verify([once], want, `${dev} device: ${c.name}`);
        for (let r = 0; r < REPEAT; r++) {
          const part = repeated.subarray(r * calls[i].n * H, (r + 1) * calls[i].n * H);
          await c.verify([part], want, `${dev} device: ${c.name}, copy ${r + 1} of ${REPEAT} in one group`);
        }
      }
      // webgpu against the cpu device (the Worker's WASM kernels), with the same tolerance
      await c.verify([results.get('webgpu')![2 * i]], [results.get('cpu')![2 * i]], `webgpu vs cpu device: ${c.name}`);
    });
  }
});
