// One request frame in, one result or error frame out, on an expert shard: checked like the backend checks it
// (src/protocol/check-request.ts), computed pair group by pair group with the front's own WASM FFN, rows put back
// in pair order. Never throws: every failure becomes an error frame.
import { ffnInHeap } from '../engine/expert-ffn';
import { scaleLogits } from '../engine/head';
import { pickToken } from '../engine/sampler';
import type { Kernels } from '../kernels/types';
import { selectRows } from '../protocol/activations';
import { checkRequest } from '../protocol/check-request';
import { combinePairs, groupPairs } from '../protocol/expert-call';
import { allocResult, decodeFrame, encodeResult, errorFrameFor, sameTag, tagHex, WireError, type DecodedHead } from '../protocol/expert-wire';
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
    // rows go straight into the reply frame (COMBINE and f16 results, which our front never asks for, are encoded after)
    const reply = req.combine || req.resultDType !== 'f32' ? null : allocResult({ requestId: req.requestId, modelTag: slice.tag, combine: false, count: req.experts.length, hidden: H });
    const values = reply ? reply.values : new Float32Array(req.experts.length * H);
    for (const { key: e, members } of groupPairs(req.experts.length, (i) => req.experts[i])) {
      const x = selectRows(req.activations, H, members.map((i) => req.tokens[i]));
      ffnInHeap(k, slice.experts[req.layer][e]!, x, members.length, (y) => members.forEach((pair, j) => values.set(y.subarray(j * H, j * H + H), pair * H)));
    }
    const frame = reply
      ? reply.frame
      : encodeResult({
        requestId: req.requestId, modelTag: slice.tag, combine: req.combine, dtype: req.resultDType,
        count: req.combine ? req.nTok : req.experts.length, hidden: H, values: req.combine ? combinePairs(req, values) : values,
      });
    return { frame, pairs: req.experts.length, error: false };
  } catch (e) {
    return { frame: errorFrameFor(e, slice.tag, requestId), pairs: 0, error: true };
  }
}

/** Embedding rows, logits or a sampled token from the head this shard holds, computed with the front's kernels. */
function answerHead(k: Kernels, slice: ShardSlice, h: DecodedHead): Answer {
  const a = slice.manifest.architecture;
  const id = h.requestId;
  if (!sameTag(h.modelTag, slice.tag)) throw new WireError(409, 'model_mismatch', `request is for model tag ${tagHex(h.modelTag)}, shard ${slice.binding} serves ${slice.manifest.name} (${tagHex(slice.tag)})`, id);
  if (!slice.head) throw new WireError(404, 'head_not_served', `shard ${slice.binding} does not hold the head (shard-layout.json gives it to another shard or to the front)`, id);
  if (h.hidden !== a.hiddenSize) throw new WireError(400, 'shape_mismatch', `hidden size ${h.hidden}, the model's is ${a.hiddenSize}`, id);
  const H = a.hiddenSize;
  const V = a.vocabSize;
  const width = h.op === 'embed' ? H : h.op === 'logits' ? V : 1 + H;
  if (h.op === 'embed') for (let i = 0; i < h.n; i++) if (h.tokens[i] >= V) throw new WireError(400, 'bad_frame', `token id ${h.tokens[i]} outside the vocabulary of ${V}`, id);
  const head = slice.head;
  const out = k.heap.alloc(h.n * (h.op === 'embed' ? H : V) * 4);
  const x = h.op === 'embed' ? 0 : k.heap.alloc(h.n * H * 4);
  try {
    let values: Float32Array;
    if (h.op === 'embed') {
      for (let t = 0; t < h.n; t++) k.getRow(head.embed, h.tokens[t], out + t * H * 4);
      values = k.heap.f32(out, h.n * H).slice();
    } else {
      k.heap.f32(x, h.n * H).set(h.rows);
      k.matmul(head.output, x, out, h.n);
      if (h.op === 'logits') values = k.heap.f32(out, h.n * V).slice();
      else {
        // the front's sampler, on the front's draw: exactly the token it would have picked
        const logits = k.heap.f32(out, V).slice();
        scaleLogits(logits, a);
        const token = pickToken(logits, h.sampling, h.sampling.u);
        values = new Float32Array(1 + H);
        values[0] = token;
        k.getRow(head.embed, token, x);
        values.set(k.heap.f32(x, H), 1);
      }
    }
    return { frame: encodeResult({ requestId: id, modelTag: slice.tag, combine: false, dtype: 'f32', count: h.n, hidden: width, values }), pairs: 0, error: false };
  } finally {
    if (x) k.heap.release(x);
    k.heap.release(out);
  }
}
