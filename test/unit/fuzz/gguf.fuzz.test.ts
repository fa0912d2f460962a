// Fuzz of the GGUF reader (tools/convert/gguf.ts), which imports llama.cpp files: for mutated real files (every
// value type, every tensor type), files with lying counts and sizes, and random bytes, readGguf either returns
// a file whose tensors lie inside the input with ggml's size for their type and dims, or throws GgufError;
// nothing else escapes, and a huge count in the header is refused instead of looping or allocating.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ggmlBytes, GgufError, readGguf, writeGguf, type GgufFile, type GgufValue } from '../../../tools/convert/gguf';
import { fuzzParams, fuzzRuns, fuzzTimeout, mutatedBytes, thrown } from '../../helpers/fuzz';

function readsOrRefuses(bytes: Uint8Array): 'read' | 'refused' {
  const e = thrown(() => {
    const f = readGguf(bytes);
    for (const t of f.tensors) {
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (t.data.length !== ggmlBytes(t.dtype, n)) throw new Error(`tensor ${t.name}: ${t.data.length} bytes for ${t.dtype} ${t.dims.join('x')}`);
    }
  });
  if (e === undefined) return 'read';
  if (!(e instanceof GgufError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
  return 'refused';
}

const metadata = new Map<string, GgufValue>([
  ['general.architecture', { type: 'string', value: 'llama' }],
  ['general.name', { type: 'string', value: 'fuzz ✓ model' }],
  ['general.alignment', { type: 'u32', value: 32 }],
  ['llama.block_count', { type: 'u32', value: 2 }],
  ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
  ['x.u8', { type: 'u8', value: 7 }],
  ['x.i8', { type: 'i8', value: -7 }],
  ['x.u16', { type: 'u16', value: 65535 }],
  ['x.i16', { type: 'i16', value: -300 }],
  ['x.i32', { type: 'i32', value: -5 }],
  ['x.f64', { type: 'f64', value: Math.PI }],
  ['x.u64', { type: 'u64', value: 2n ** 40n }],
  ['x.i64', { type: 'i64', value: -(2n ** 40n) }],
  ['x.bool', { type: 'bool', value: true }],
  ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['<s>', '</s>', 'a', 'bc'] }],
  ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: [0, -1, -2.5, 3] }],
]);
const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const realFile: Pick<GgufFile, 'metadata' | 'tensors'> = {
  metadata,
  tensors: [
    { name: 'token_embd.weight', dims: [32, 4], dtype: 'q8_0', data: bytesOf(ggmlBytes('q8_0', 128), 1) },
    { name: 'blk.0.ffn_up.weight', dims: [64, 2], dtype: 'q4_0', data: bytesOf(ggmlBytes('q4_0', 128), 2) },
    { name: 'output_norm.weight', dims: [8], dtype: 'f32', data: bytesOf(32, 3) },
    { name: 'blk.0.attn_q.weight', dims: [4, 3], dtype: 'f16', data: bytesOf(24, 4) },
  ],
};
const real = writeGguf(realFile);

/** Overwrites the u64 at `at` (a count or size field) with `v`. */
function withU64(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer).setBigUint64(at, v, true);
  return b;
}

describe('GGUF reader fuzz', () => {
  it('the seed file reads back as written', () => {
    const f = readGguf(real);
    expect(f.tensors.map((t) => t.name)).toEqual(realFile.tensors.map((t) => t.name));
    expect([...f.metadata.keys()]).toEqual([...metadata.keys()]);
  });

  it(`${fuzzRuns(400)} mutations of a real file: read cleanly or refused with GgufError`, () => {
    const seen = { read: 0, refused: 0 };
    fc.assert(fc.property(mutatedBytes(real), (b) => void seen[readsOrRefuses(b)]++), fuzzParams(400));
    expect(seen.refused).toBeGreaterThan(0);
  }, fuzzTimeout(400, 5));

  it(`${fuzzRuns(200)} lying tensor and metadata counts (up to 2^64-1) are refused, not looped over`, () => {
    const huge = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 32n, 1_000_000n));
    fc.assert(
      fc.property(fc.constantFrom(8, 16), huge, (at, v) => {
        readsOrRefuses(withU64(real, at, v));
      }),
      fuzzParams(200),
    );
  }, fuzzTimeout(200, 50));

  it(`${fuzzRuns(200)} random byte strings, with and without the GGUF magic and version`, () => {
    const head = new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]);
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 256 }), (magic, rest) => {
        const b = magic ? new Uint8Array([...head, ...rest]) : rest;
        readsOrRefuses(b);
      }),
      fuzzParams(200),
    );
  });
});
