// The batcher over the real cpu device, in process: calls submitted together become one device batch grouped by
// (layer, expert), and each call gets exactly the rows it would get alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectNames, tensorNames } from '../../../src/format/manifest';
import { readManifest, readVerified } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { Batcher, type BatchCall, type BatchStats } from '../../../gpu-backend/batcher';
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

function randomCall(rng: Rng): BatchCall {
  const nTok = 1 + rng.int(6);
  const tokens: number[] = [];
  const experts: number[] = [];
  for (let t = 0; t < nTok; t++) for (let k = 0; k < 2; k++) { tokens.push(t); experts.push(rng.int(8)); }
  return { layer: rng.int(2), hidden: H, x: rng.floats(nTok * H), tokens, experts };
}

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
    const good = { layer: 0, hidden: H, x: new Float32Array(H), tokens: [0], experts: [1] };
    const bad = { layer: 1, hidden: H, x: new Float32Array(H), tokens: [0], experts: [99] };
    const [g, e] = await Promise.allSettled([b.submit(good), b.submit(bad)]);
    expect(g.status).toBe('fulfilled');
    expect(e.status).toBe('rejected');
  });
});
