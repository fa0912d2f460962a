// The batcher over the real cpu device, in process: calls submitted together become one device batch grouped by
// (layer, expert), each call gets exactly the rows it would get alone, and q8_0 calls need no trip through f32.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectNames, tensorNames } from '../../../src/format/manifest';
import { activationsToF32, encodeActivations, type ActDType } from '../../../src/protocol/activations';
import type { ExpertCall } from '../../../src/protocol/expert-call';
import { readManifest, readVerified } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { Batcher, type BatchStats } from '../../../gpu-backend/batcher';
import { createCpuDevice } from '../../../gpu-backend/devices/cpu';
import type { ExpertDevice } from '../../../gpu-backend/devices/device';
import { Rng } from '../kernels/rng';
import { tinyModelDir } from '../../helpers/tiny-model';

const H = 64;
let device: ExpertDevice;

beforeAll(async () => {
  const src = fsSource(await tinyModelDir()); // hidden 64, 2 layers, 8 experts
  const m = await readManifest(src);
  device = await createCpuDevice({ threads: 3 });
  for (let l = 0; l < 2; l++) {
    for (let e = 0; e < 8; e++) {
      const t = (name: string) => m.tensors[name]!;
      await device.loadExpert(l, e, { gate: t(tensorNames.expertGate(l, e)), up: t(tensorNames.expertUp(l, e)), down: t(tensorNames.expertDown(l, e)) },
        await readVerified(src, m, objectNames.expert(l, e)));
    }
  }
});
afterAll(() => device?.close());

function randomCall(rng: Rng, dtype: ActDType = 'f32'): ExpertCall {
  const nTok = 1 + rng.int(6);
  const tokens: number[] = [];
  const experts: number[] = [];
  for (let t = 0; t < nTok; t++) for (let k = 0; k < 2; k++) { tokens.push(t); experts.push(rng.int(8)); }
  const layer = rng.int(2);
  return { layer, hidden: H, nTok, tokens, experts, weights: tokens.map(() => 0.5), activations: encodeActivations(rng.floats(nTok * H), dtype) };
}

const call = (layer: number, expert: number): ExpertCall =>
  ({ layer, hidden: H, nTok: 1, tokens: [0], experts: [expert], weights: [1], activations: { dtype: 'f32', data: new Float32Array(H) } });

describe('batcher', () => {
  it('merges calls of one turn into one batch and splits results back exactly', async () => {
    const rng = new Rng(20);
    const calls = Array.from({ length: 24 }, () => randomCall(rng));
    const stats: BatchStats[] = [];
    const together = new Batcher(device, { onBatch: (s) => stats.push(s) });
    const merged = await Promise.all(calls.map((c) => together.submit(c)));
    expect(stats.length).toBe(1);
    expect(stats[0].calls).toBe(24);
    expect(stats[0].groups).toBeLessThanOrEqual(16); // at most one group per (layer, expert)
    expect(stats[0].pairs).toBe(calls.reduce((s, c) => s + c.tokens.length, 0));

    const alone = new Batcher(device);
    for (let i = 0; i < calls.length; i++) {
      const solo = await alone.submit(calls[i]);
      expect(Array.from(new Uint32Array(merged[i].buffer))).toEqual(Array.from(new Uint32Array(solo.buffer)));
    }
  });

  it('q8_0 calls run on their blocks: each row is bit for bit that of the dequantized call in f32', async () => {
    const rng = new Rng(22);
    const calls = Array.from({ length: 12 }, () => randomCall(rng, 'q8_0'));
    const stats: BatchStats[] = [];
    const b = new Batcher(device, { onBatch: (s) => stats.push(s) });
    const q8 = await Promise.all(calls.map((c) => b.submit(c)));
    const f32 = await Promise.all(calls.map((c) => b.submit({ ...c, activations: { dtype: 'f32', data: activationsToF32(c.activations) } })));
    expect(stats[0].groups).toBeLessThanOrEqual(16);
    for (let i = 0; i < calls.length; i++) expect(Array.from(new Uint32Array(q8[i].buffer))).toEqual(Array.from(new Uint32Array(f32[i].buffer)));
  });

  it('calls arriving while the device is busy form the next batch', async () => {
    const rng = new Rng(21);
    const stats: BatchStats[] = [];
    const b = new Batcher(device, { maxInFlight: 1, onBatch: (s) => stats.push(s) });
    const first = b.submit(randomCall(rng));
    await new Promise((r) => setImmediate(r)); // the first batch is on the device now
    const later = Array.from({ length: 10 }, () => b.submit(randomCall(rng)));
    await Promise.all([first, ...later]);
    expect(stats.map((s) => s.calls)).toEqual([1, 10]);
  });

  it('an unknown expert fails only the calls of that layer', async () => {
    const b = new Batcher(device);
    const good = call(0, 1);
    const bad = call(1, 99);
    const [g, e] = await Promise.allSettled([b.submit(good), b.submit(bad)]);
    expect(g.status).toBe('fulfilled');
    expect(e.status).toBe('rejected');
  });
});
