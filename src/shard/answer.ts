// One request frame in, one result or error frame out, on an expert shard: checked like the backend checks it
// (src/protocol/check-request.ts), computed pair group by pair group with the front's own WASM FFN, rows put back
// in pair order. Never throws: every failure becomes an error frame.
import { ffnOnActivations } from '../engine/expert-ffn';
import type { Kernels } from '../kernels/types';
import { selectRows } from '../protocol/activations';
import { checkRequest } from '../protocol/check-request';
import { combinePairs, groupPairs } from '../protocol/expert-call';
import { decodeRequest, encodeResult, errorFrameFor } from '../protocol/expert-wire';
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
    const req = decodeRequest(bytes);
    requestId = req.requestId;
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
