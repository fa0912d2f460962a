// One expert call, transport-independent: request frame in, result or error frame out. Checks the call against
// this replica (model tag, layer, experts, hidden size), runs it through the batcher (activations as they arrived:
// q8_0 blocks stay blocks), applies COMBINE.
import { checkRequest } from '../src/protocol/check-request';
import { combinePairs } from '../src/protocol/expert-call';
import { decodeRequest, encodeResult, errorFrameFor, WireError, type DecodedRequest } from '../src/protocol/expert-wire';
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
      const values = req.combine ? combinePairs(req, rows) : rows;
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
    checkRequest(req, {
      name: m.name, tag: m.tag, numLayers: a.numLayers, numExperts: a.numExperts, hidden: m.hidden, who: 'this backend',
      serves: (l, e) => serves(m, l, e),
      describe: () => `its range is layers ${m.layers.lo}-${m.layers.hi}, experts ${m.experts.lo}-${m.experts.hi}`,
    });
  }
}

