// A generation's connection to experts spread over several endpoints (the BACKENDS replicas of the GPU tier, or
// the expert-shard Workers): one ExpertSession per endpoint that owns a non-resident expert of this generation's
// hot set (endpoints holding only hot experts are never contacted). A layer's call is split by owner and every
// part is sent before call() returns, so all of them travel while the hot experts run; the parts' rows are put
// back in the call's pair order. connectBackend picks this or a plain ExpertSession (BACKEND_URL).
import type { BackendTarget } from '../engine/api';
import { groupPairs, subCall, type ExpertCall } from '../protocol/expert-call';
import { BackendUnavailableError, type BackendError } from './errors';
import { ownerTable } from './replicas';
import { ExpertSession, type RemoteExperts, type RemoteReply, type SocketOpener } from './session';

export interface ModelLayout {
  numLayers: number;
  numExperts: number;
  /** Resident (hot) experts of each layer in this generation's hot-set version. */
  hot: readonly (readonly number[])[];
}

// The owner table depends only on the config object and the model's shape; requests of an isolate share both.
const owners = new WeakMap<object, Map<string, Uint8Array>>();

function ownersOf(target: BackendTarget, layout: ModelLayout): Uint8Array {
  const replicas = target.replicas!;
  let byShape = owners.get(replicas);
  if (!byShape) owners.set(replicas, (byShape = new Map()));
  const key = `${layout.numLayers}x${layout.numExperts}`;
  let table = byShape.get(key);
  if (!table) byShape.set(key, (table = ownerTable(replicas, layout.numLayers, layout.numExperts)));
  return table;
}

/**
 * The backend connection for one generation: a single session (BACKEND_URL) or one per needed replica
 * (BACKENDS). Throws BackendsConfigError when BACKENDS does not give every expert of the model one owner.
 */
export function connectBackend(target: BackendTarget, modelTag: Uint8Array, layout: ModelLayout, open?: SocketOpener): RemoteExperts {
  if (!target.replicas) return new ExpertSession(target, modelTag, open);
  const endpoints = target.replicas.map((r) => ({ target: { ...target, url: r.url }, open }));
  return new ShardedSession(endpoints, modelTag, ownersOf(target, layout), layout);
}

/** One place experts can be sent: where it is, and how its socket opens (default: fetch to the URL). */
export interface Endpoint {
  readonly target: BackendTarget;
  readonly open?: SocketOpener;
}

/** In an owner table: the expert has no owner among these endpoints (it is someone else's). */
export const NO_OWNER = 0xff;

/**
 * Calls split by owner over several endpoints: BACKENDS replicas, or expert-shard Workers. Only endpoints that own
 * a non-resident expert are connected to, at once, so the handshakes overlap the first tokens' trunk work.
 */
export class ShardedSession implements RemoteExperts {
  private readonly sessions: (ExpertSession | null)[];
  private closed = false;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly modelTag: Uint8Array,
    /** owner[layer * numExperts + expert] = endpoint index, or NO_OWNER */
    private readonly owner: Uint8Array,
    private readonly layout: ModelLayout,
  ) {
    this.sessions = endpoints.map(() => null);
    const E = layout.numExperts;
    for (let l = 0; l < layout.numLayers; l++) {
      const hot = new Set(layout.hot[l] ?? []);
      for (let e = 0; e < E; e++) if (!hot.has(e) && owner[l * E + e] !== NO_OWNER) this.session(owner[l * E + e]);
    }
  }

  /** True when one of the endpoints holds (layer, expert). */
  owns(layer: number, expert: number): boolean {
    return this.owner[layer * this.layout.numExperts + expert] !== NO_OWNER;
  }

  get failure(): BackendError | null {
    for (const s of this.sessions) if (s?.failure) return s.failure;
    return null;
  }

  call(c: ExpertCall): Promise<RemoteReply> {
    if (this.closed) return Promise.reject(this.failure ?? new BackendUnavailableError('unavailable', 'session already closed'));
    const E = this.layout.numExperts;
    const parts = groupPairs(c.experts.length, (i) => this.owner[c.layer * E + c.experts[i]]); // by endpoint
    const unowned = parts.find((p) => p.key === NO_OWNER);
    if (unowned) return Promise.reject(new BackendUnavailableError('protocol', `expert ${c.layer}/${c.experts[unowned.members[0]]} has no owner here`));
    if (parts.length === 1) return this.session(parts[0].key).call(c);
    const sent = parts.map(({ key, members }) => ({ members, reply: this.session(key).call(subCall(c, members)) }));
    return Promise.all(sent.map((s) => s.reply)).then((replies) => {
      const H = c.hidden;
      const values = new Float32Array(c.experts.length * H);
      let roundTripMs = 0;
      replies.forEach((rep, k) => {
        sent[k].members.forEach((pair, j) => values.set(rep.values.subarray(j * H, j * H + H), pair * H));
        roundTripMs = Math.max(roundTripMs, rep.roundTripMs); // the parts travel at the same time
      });
      return { values, roundTripMs };
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions) s?.close();
  }

  /** The session to endpoint i (opened now if it is not yet): the head shard's, for head calls. */
  endpoint(i: number): ExpertSession {
    return this.session(i);
  }

  private session(i: number): ExpertSession {
    let s = this.sessions[i];
    if (!s) {
      const ep = this.endpoints[i];
      s = new ExpertSession(ep.target, this.modelTag, ep.open);
      this.sessions[i] = s;
    }
    return s;
  }
}
