// safetensors: values survive a write/read round trip, half formats decode exactly, and every kind of
// corrupt file is refused with a reason instead of yielding garbage tensors.
import { describe, expect, it } from 'vitest';
import { f32ToF16 } from '../../../src/format/quant';
import { encodeSafetensors, parseSafetensors, SafetensorsError } from '../../../tools/convert/safetensors';

/** A file from a header object and a data buffer, header padded like the Rust writer. */
function file(header: Record<string, unknown>, data: Uint8Array, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, headerLength ?? json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
const parseError = (bytes: Uint8Array): string => {
  try {
    parseSafetensors(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return (e as Error).message;
  }
  throw new Error('parsed a corrupt file');
};

describe('safetensors', () => {
  it('round-trips F32 tensors, shapes and metadata', () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1);
    const b = Float32Array.from([3.25]);
    const bytes = encodeSafetensors([{ name: 'a', shape: [2, 3], data: a }, { name: 'b.weight', shape: [1], data: b }], { format: 'pt', note: 'x' });
    expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0);
    const st = parseSafetensors(bytes);
    expect(st.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...st.tensors.keys()]).toEqual(['a', 'b.weight']);
    expect(st.tensors.get('a')!.shape).toEqual([2, 3]);
    expect(st.float32('a')).toEqual(a);
    expect(st.float32('b.weight')).toEqual(b);
    expect(() => st.float32('c')).toThrow(/no tensor named c/);
  });

  it('decodes F16 and BF16 exactly', () => {
    const values = [0, 1, -2.5, 65504, 2 ** -24, -0.0999755859375]; // all exact in f16
    const half = new Uint16Array(values.map(f32ToF16));
    const bf = new Uint16Array(values.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16));
    const data = new Uint8Array(24);
    data.set(new Uint8Array(half.buffer), 0);
    data.set(new Uint8Array(bf.buffer), 12);
    const st = parseSafetensors(file({ h: { dtype: 'F16', shape: [6], data_offsets: [0, 12] }, b: { dtype: 'BF16', shape: [2, 3], data_offsets: [12, 24] } }, data));
    expect([...st.float32('h')]).toEqual(values);
    const upper16 = new Float32Array(new Uint32Array(Array.from(bf, (h) => h << 16)).buffer); // bf16 = top half of f32
    expect([...st.float32('b')]).toEqual([...upper16]);
    expect(st.float32('b')[2]).toBe(-2.5);
  });

  it('refuses to decode non-float tensors', () => {
    const st = parseSafetensors(file({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)));
    expect(st.raw('ids').length).toBe(16);
    expect(() => st.float32('ids')).toThrow(/not a float type/);
  });

  it('rejects corrupt files with a reason', () => {
    const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expect(parseError(new Uint8Array(5))).toMatch(/shorter than the 8-byte header length/);
    expect(parseError(file(ok, f32([1, 2]), 10_000))).toMatch(/runs past the end/);
    const huge = file(ok, f32([1, 2]));
    new DataView(huge.buffer).setUint32(4, 1, true); // header length >= 2^32
    expect(parseError(huge)).toMatch(/exceeds/);
    const notJson = file(ok, f32([1, 2]));
    notJson[8] = 0x7a;
    expect(parseError(notJson)).toMatch(/not valid UTF-8 JSON/);
    expect(parseError(file([1, 2] as unknown as Record<string, unknown>, new Uint8Array(0)))).toMatch(/not a JSON object/);
    expect(parseError(file({ t: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, f32([1, 2])))).toMatch(/unknown dtype "Q4"/);
    expect(parseError(file({ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, f32([1, 2])))).toMatch(/shape/);
    expect(parseError(file({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])))).toMatch(/needs 12 bytes but data_offsets span 8/);
    expect(parseError(file({ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32([1, 2])))).toMatch(/data_offsets/);
    expect(parseError(file({ t: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32([1, 2])))).toMatch(/past the 8-byte data buffer/);
    expect(parseError(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2])))).toMatch(/overlaps/);
    expect(parseError(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2])))).toMatch(/belong to no tensor/);
    expect(parseError(file(ok, f32([1, 2, 3])))).toMatch(/data buffer has 12 bytes but the tensors cover 8/);
    expect(parseError(file({ __metadata__: { n: 1 }, ...ok }, f32([1, 2])))).toMatch(/__metadata__\.n is not a string/);
  });

  it('detects a truncated file', () => {
    const bytes = encodeSafetensors([{ name: 'w', shape: [4, 8], data: new Float32Array(32).fill(1) }]);
    expect(parseError(bytes.subarray(0, bytes.length - 4))).toMatch(/past the \d+-byte data buffer/);
  });
});
