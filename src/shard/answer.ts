// One request frame in, one result or error frame out, on an expert shard: checked like the backend checks it
// (src/protocol/check-request.ts), computed pair group by pair group with the front's own WASM FFN, rows put back
// in pair order. Never throws: every failure becomes an error frame.
import { ffnOnActivations } from '../engine/expert-ffn';
import type { Kernels } from '../kernels/types';
import { selectRows } from '../protocol/activations';
import { checkRequest } from '../protocol/check-request';
import { combinePairs, groupPairs } from '../protocol/expert-call';
import { decodeFrame, encodeResult, errorFrameFor, sameTag, tagHex, WireError, type DecodedHead } from '../protocol/expert-wire';
import type { ShardSlice } from './slice';

export interface Answer {
  readonly frame: Uint8Array;
  /** pairs computed (0 for an error frame) */
  readonly pairs: number;
  readonly error: boolean;
}

export function answerFrame(k: Kernels, slice: ShardSlice, bytes: Uint8Array): Answer {
  let requestId: number | undefined;
  try {
    const got = decodeFrame(bytes);
    requestId = got.requestId;
    if (got.kind === 'head') return answerHead(k, slice, got);
    if (got.kind !== 'request') throw new WireError(400, 'bad_frame', `a ${got.kind} frame sent to an expert shard`, requestId);
    const req = got;
    const a = slice.manifest.architecture;
    checkRequest(req, {
      name: slice.manifest.name, tag: slice.tag, numLayers: a.numLayers, numExperts: a.numExperts, hidden: a.hiddenSize,
      who: `shard ${slice.binding}`,
      serves: (l, e) => slice.experts[l][e] !== undefined,
      describe: (l) => `it holds ${slice.experts[l].flatMap((w, e) => (w ? [e] : [])).join(', ') || 'none'} of layer ${l}`,
    });
    const H = req.hidden;
    const values = new Float32Array(req.experts.length * H);
    for (const { key: e, members } of groupPairs(req.experts.length, (i) => req.experts[i])) {
      const x = selectRows(req.activations, H, members.map((i) => req.tokens[i]));
      const y = ffnOnActivations(k, slice.experts[req.layer][e]!, x, members.length);
      members.forEach((pair, j) => values.set(y.subarray(j * H, j * H + H), pair * H));
    }
    const frame = encodeResult({
      requestId: req.requestId, modelTag: slice.tag, combine: req.combine, dtype: req.resultDType,
      count: req.combine ? req.nTok : req.experts.length, hidden: H, values: req.combine ? combinePairs(req, values) : values,
    });
    return { frame, pairs: req.experts.length, error: false };
  } catch (e) {
    return { frame: errorFrameFor(e, slice.tag, requestId), pairs: 0, error: true };
  }
}

/** Embedding rows or logits from the head this shard holds, computed with the front's kernels. */
function answerHead(k: Kernels, slice: ShardSlice, h: DecodedHead): Answer {
  const a = slice.manifest.architecture;
  const id = h.requestId;
  if (!sameTag(h.modelTag, slice.tag)) throw new WireError(409, 'model_mismatch', `request is for model tag ${tagHex(h.modelTag)}, shard ${slice.binding} serves ${slice.manifest.name} (${tagHex(slice.tag)})`, id);
  if (!slice.head) throw new WireError(404, 'head_not_served', `shard ${slice.binding} does not hold the head (shard-layout.json gives it to another shard or to the front)`, id);
  if (h.hidden !== a.hiddenSize) throw new WireError(400, 'shape_mismatch', `hidden size ${h.hidden}, the model's is ${a.hiddenSize}`, id);
  const H = a.hiddenSize;
  const width = h.op === 'embed' ? H : a.vocabSize;
  if (h.op === 'embed') for (let i = 0; i < h.n; i++) if (h.tokens[i] >= a.vocabSize) throw new WireError(400, 'bad_frame', `token id ${h.tokens[i]} outside the vocabulary of ${a.vocabSize}`, id);
  const out = k.heap.alloc(h.n * width * 4);
  const x = h.op === 'logits' ? k.heap.alloc(h.n * H * 4) : 0;
  try {
    if (h.op === 'embed') for (let t = 0; t < h.n; t++) k.getRow(slice.head.embed, h.tokens[t], out + t * H * 4);
    else {
      k.heap.f32(x, h.n * H).set(h.rows);
      k.matmul(slice.head.output, x, out, h.n);
    }
    const values = k.heap.f32(out, h.n * width).slice();
    return { frame: encodeResult({ requestId: id, modelTag: slice.tag, combine: false, dtype: 'f32', count: h.n, hidden: width, values }), pairs: 0, error: false };
  } finally {
    if (x) k.heap.release(x);
    k.heap.release(out);
  }
}
