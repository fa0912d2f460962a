// The few onnx.proto fields our hand-built ONNX models need, as protobuf wire bytes (varint, length-delimited
// and fixed fields only), so neither the benchmark nor the kernel tests need a protobuf dependency.

export type Bytes = number[];

export const varint = (v: number): Bytes => {
  const out: Bytes = [];
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
};
export const key = (field: number, wire: number) => varint(field * 8 + wire);
export const int = (field: number, v: number): Bytes => [...key(field, 0), ...varint(v)];
/** A length-delimited field: an embedded message, bytes or a string. */
export const len = (field: number, body: ArrayLike<number>): Bytes => [...key(field, 2), ...varint(body.length), ...Array.from(body)];
export const str = (field: number, s: string): Bytes => len(field, new TextEncoder().encode(s));

// onnx TensorProto.DataType
export const FLOAT = 1;
export const UINT8 = 2;
export const INT8 = 3;

/** ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 { dim_value = 1 | dim_param = 2 } } } } } of a float tensor. */
export function valueInfo(name: string, dims: (number | string)[]): Bytes {
  const shape = dims.flatMap((d) => len(1, typeof d === 'string' ? str(2, d) : int(1, d)));
  return [...str(1, name), ...len(2, len(1, [...int(1, FLOAT), ...len(2, shape)]))];
}
