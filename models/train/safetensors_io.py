# A minimal safetensors writer and reader for f32 tensors (no `safetensors` package on this machine):
# 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the data.
import json
import struct

import numpy as np
import torch


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    header: dict = {'__metadata__': metadata} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode('utf-8')
    raw += b' ' * (-len(raw) % 8)  # the data starts 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load_file(path: str) -> dict[str, torch.Tensor]:
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        if info['dtype'] != 'F32':
            raise ValueError(f'{name}: only F32 is supported, got {info["dtype"]}')
        a, b = info['data_offsets']
        arr = np.frombuffer(buf, dtype='<f4', count=(b - a) // 4, offset=8 + n + a).reshape(info['shape'])
        out[name] = torch.from_numpy(arr.copy())
    return out
