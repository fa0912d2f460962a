// One expert call, transport-independent: request frame in, result or error frame out. Checks the call against
// this replica (model tag, layer, experts, hidden size), runs it through the batcher (activations as they arrived:
// q8_0 blocks stay blocks), applies COMBINE.
import { decodeRequest, encodeResult, errorFrameFor, sameTag, tagHex, WireError, type DecodedRequest } from '../src/protocol/expert-wire';
import type { Batcher } from './batcher';
import type { Metrics } from './metrics';
import { serves, type BackendModel } from './model';

export interface Answer {
  readonly status: number; // 200, or the error frame's status
  readonly frame: Uint8Array;
}

export class ExpertService {
  constructor(private readonly model: BackendModel, private readonly batcher: Batcher, private readonly metrics: Metrics) {}

  /** Never throws: every failure becomes an error frame (and is counted by code). */
  async handle(bytes: Uint8Array, transport: 'http' | 'ws'): Promise<Answer> {
    this.metrics.calls[transport]++;
    let requestId: number | undefined;
    try {
      const req = decodeRequest(bytes);
      requestId = req.requestId;
      this.check(req);
      const rows = await this.batcher.submit(req);
      const values = req.combine ? combine(req, rows) : rows;
      this.metrics.pairs += req.tokens.length;
      this.metrics.tokens += req.nTok;
      const frame = encodeResult({
        requestId: req.requestId, modelTag: this.model.tag, combine: req.combine, dtype: req.resultDType,
        count: req.combine ? req.nTok : req.tokens.length, hidden: req.hidden, values,
      });
      return { status: 200, frame };
    } catch (e) {
      const status = e instanceof WireError ? e.status : 500;
      this.metrics.error(e instanceof WireError ? e.code : 'internal');
      return { status, frame: errorFrameFor(e, this.model.tag, requestId) };
    }
  }

  private check(req: DecodedRequest): void {
    const m = this.model;
    const a = m.manifest.architecture;
    const id = req.requestId;
    if (!sameTag(req.modelTag, m.tag)) {
      throw new WireError(409, 'model_mismatch', `request is for model tag ${tagHex(req.modelTag)}, this backend serves ${m.name} (${tagHex(m.tag)})`, id);
    }
    if (req.layer >= a.numLayers) throw new WireError(404, 'unknown_layer', `layer ${req.layer} does not exist (model has ${a.numLayers})`, id);
    if (req.hidden !== m.hidden) throw new WireError(400, 'shape_mismatch', `hidden size ${req.hidden}, the model's is ${m.hidden}`, id);
    for (let i = 0; i < req.experts.length; i++) {
      const e = req.experts[i];
      if (e >= a.numExperts) throw new WireError(404, 'unknown_expert', `pair ${i}: expert ${e} does not exist (model has ${a.numExperts})`, id);
      if (!serves(m, req.layer, e)) {
        throw new WireError(404, 'expert_not_served', `expert ${req.layer}/${e} is outside this replica's range (layers ${m.layers.lo}-${m.layers.hi}, experts ${m.experts.lo}-${m.experts.hi})`, id);
      }
    }
  }
}

// COMBINE: y (nTok, H), y[t] = sum over pairs of t, in request order, of w * rows[i], accumulated in f32.
function combine(req: DecodedRequest, rows: Float32Array): Float32Array {
  const H = req.hidden;
  const y = new Float32Array(req.nTok * H);
  for (let i = 0; i < req.tokens.length; i++) {
    const w = req.weights[i];
    const o = req.tokens[i] * H;
    for (let j = 0; j < H; j++) y[o + j] = Math.fround(y[o + j] + Math.fround(w * rows[i * H + j]));
  }
  return y;
}
