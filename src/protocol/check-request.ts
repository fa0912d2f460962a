// What an expert server checks before it computes a request: the model tag, the layer, the hidden size and that
// it holds every expert asked for. One rule set for the GPU backend (a range of layers x experts) and for an
// expert-shard Worker (a planned slice); each says what it serves and how to describe that in an error.
import { tagHex, sameTag, WireError, type DecodedRequest } from './expert-wire';

export interface ServedExperts {
  /** the model's name, for messages */
  readonly name: string;
  readonly tag: Uint8Array;
  readonly numLayers: number;
  readonly numExperts: number;
  readonly hidden: number;
  /** who this server is, for messages: "this backend", "shard SHARD_1" */
  readonly who: string;
  serves(layer: number, expert: number): boolean;
  /** what it holds, for the expert_not_served message: "layers 0-11, experts 0-31" */
  describe(layer: number): string;
}

/** Throws the WireError (409 / 404 / 400) the first problem of `req` deserves; returns when it can be served. */
export function checkRequest(req: DecodedRequest, s: ServedExperts): void {
  const id = req.requestId;
  if (!sameTag(req.modelTag, s.tag)) {
    throw new WireError(409, 'model_mismatch', `request is for model tag ${tagHex(req.modelTag)}, ${s.who} serves ${s.name} (${tagHex(s.tag)})`, id);
  }
  if (req.layer >= s.numLayers) throw new WireError(404, 'unknown_layer', `layer ${req.layer} does not exist (model has ${s.numLayers})`, id);
  if (req.hidden !== s.hidden) throw new WireError(400, 'shape_mismatch', `hidden size ${req.hidden}, the model's is ${s.hidden}`, id);
  for (let i = 0; i < req.experts.length; i++) {
    const e = req.experts[i];
    if (e >= s.numExperts) throw new WireError(404, 'unknown_expert', `pair ${i}: expert ${e} does not exist (model has ${s.numExperts})`, id);
    if (!s.serves(req.layer, e)) throw new WireError(404, 'expert_not_served', `expert ${req.layer}/${e} is not held by ${s.who} (${s.describe(req.layer)})`, id);
  }
}
