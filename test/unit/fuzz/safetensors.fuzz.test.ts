// Fuzz of the safetensors reader (tools/convert/safetensors.ts), which the converter runs over downloaded
// checkpoints: for mutated real files, random headers and random bytes, parseSafetensors either returns a
// file whose every tensor reads back with the size its header promises, or throws SafetensorsError; nothing
// else escapes (no RangeError from a DataView, no TypeError from a header of the wrong shape).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, parseSafetensors, SAFETENSORS_DTYPE_BYTES, SafetensorsError } from '../../../tools/convert/safetensors';
import { fuzzParams, fuzzRuns, fuzzTimeout, mutatedBytes, thrown } from '../../helpers/fuzz';

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** The property: a clean parse whose tensors all read back, or a SafetensorsError. */
function readsOrRefuses(bytes: Uint8Array): 'read' | 'refused' {
  const e = thrown(() => {
    const st = parseSafetensors(bytes);
    for (const [name, t] of st.tensors) {
      const raw = st.raw(name);
      if (raw.length !== t.bytes || t.offset + t.bytes > bytes.length) throw new Error(`tensor ${name}: ${raw.length} bytes read, header says ${t.bytes}`);
      if (!FLOATS.has(t.dtype)) continue;
      const values = st.float32(name);
      const numel = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== numel) throw new Error(`tensor ${name}: ${values.length} values for shape ${JSON.stringify(t.shape)}`);
    }
  });
  if (e === undefined) return 'read';
  if (!(e instanceof SafetensorsError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
  return 'refused';
}

function file(header: unknown, data: Uint8Array, lengthField?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  const view = new DataView(out.buffer);
  const n = lengthField ?? json.length;
  view.setUint32(0, n % 2 ** 32, true);
  view.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const real = encodeSafetensors(
  [
    { name: 'model.embed_tokens.weight', shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => i / 7 - 2) },
    { name: 'model.layers.0.mlp.gate.weight', shape: [2, 8], data: Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)) },
    { name: 'lm_head.weight', shape: [3], data: Float32Array.from([1, -1, 0.5]) },
  ],
  { format: 'pt' },
);

const count = fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 1e300), fc.constant('3'));
const entry = fc.record(
  {
    dtype: fc.oneof(fc.constantFrom(...Object.keys(SAFETENSORS_DTYPE_BYTES)), fc.string({ maxLength: 6 }), fc.integer()),
    shape: fc.oneof(fc.array(count, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
    data_offsets: fc.oneof(fc.tuple(fc.nat({ max: 300 }), fc.nat({ max: 300 })), fc.array(count, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
  },
  { requiredKeys: [] },
);
const header = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__metadata__', '__proto__', 'constructor')), entry, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.record({ __metadata__: fc.jsonValue({ maxDepth: 2 }) }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

describe('safetensors reader fuzz', () => {
  it(`${fuzzRuns(400)} mutations of a real file: read cleanly or refused with SafetensorsError`, () => {
    const seen = { read: 0, refused: 0 };
    fc.assert(fc.property(mutatedBytes(real), (b) => void seen[readsOrRefuses(b)]++), fuzzParams(400));
    expect(seen.refused).toBeGreaterThan(0);
  }, fuzzTimeout(400, 5));

  it(`${fuzzRuns(400)} random headers over random data, with honest and lying length fields`, () => {
    const seen = { read: 0, refused: 0 };
    const lengthField = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.oneof(fc.nat({ max: 4096 }), fc.constantFrom(2 ** 32, 2 ** 53 - 1, 100_000_001)) });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 600 }), lengthField, (h, data, n) => void seen[readsOrRefuses(file(h, data, n))]++),
      fuzzParams(400),
    );
    expect(seen.refused).toBeGreaterThan(0);
  }, fuzzTimeout(400, 5));

  it(`${fuzzRuns(200)} random byte strings`, () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => void readsOrRefuses(b)), fuzzParams(200));
  });
});
