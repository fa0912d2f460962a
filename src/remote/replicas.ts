// BACKENDS: an expert-parallel GPU tier as config. Parses the JSON var into replicas (each a block of layers x
// experts, written as the backend's own --layers/--experts ranges), rejects overlaps at once, and checks
// against a model that every (layer, expert) has exactly one owner. Pure: no I/O.
import type { BackendReplica } from '../engine/api';
import { formatIdRange, inIdRange, parseIdRange, type IdRange } from '../protocol/id-range';
import { BackendsConfigError } from './errors';

/**
 * Workers let one request hold six connections at once (fetch, R2 and WebSockets alike); a generation
 * keeps one socket per replica it needs open to its end, so a seventh would wait for the first to close.
 */
export const MAX_REPLICAS = 6;

/** `BACKENDS` as written -> replicas, or BackendsConfigError naming the entry. Overlaps are refused here. */
export function parseReplicas(json: string): BackendReplica[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new BackendsConfigError(`not JSON (${(e as Error).message}); expected [{"url": "https://...", "layers": "0-11", "experts": "0-31"}, ...]`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new BackendsConfigError('expected a non-empty JSON array of {"url", "layers", "experts"}');
  if (raw.length > MAX_REPLICAS) {
    throw new BackendsConfigError(`${raw.length} replicas: a generation holds one WebSocket per replica and Workers allow ${MAX_REPLICAS} connections per request`);
  }
  const replicas = raw.map((entry, i) => parseEntry(entry, i));
  for (let i = 0; i < replicas.length; i++) {
    for (let j = 0; j < i; j++) {
      if (overlaps(replicas[i].layers, replicas[j].layers) && overlaps(replicas[i].experts, replicas[j].experts)) {
        throw new BackendsConfigError(`entries ${j} (${describe(replicas[j])}) and ${i} (${describe(replicas[i])}) both serve some experts; each must have one owner`);
      }
    }
  }
  return replicas;
}

function parseEntry(entry: unknown, i: number): BackendReplica {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new BackendsConfigError(`entry ${i} is not an object`);
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (key !== 'url' && key !== 'layers' && key !== 'experts') throw new BackendsConfigError(`entry ${i} has an unknown key "${key}" (url, layers, experts)`);
  }
  const url = typeof e.url === 'string' ? e.url.trim() : '';
  if (!/^(https?|wss?):\/\/[^/]/i.test(url)) throw new BackendsConfigError(`entry ${i}: "url" must be an http(s):// URL, got ${JSON.stringify(e.url)}`);
  return Object.freeze({ url, layers: parseRange(e.layers, i, 'layers'), experts: parseRange(e.experts, i, 'experts') });
}

/** "a-b", "a", a number, or absent / "all" (null: every id). */
function parseRange(v: unknown, i: number, key: string): IdRange | null {
  if (v === undefined || v === null || v === 'all') return null;
  const r = parseIdRange(v);
  if (!r || !(r.lo <= r.hi)) throw new BackendsConfigError(`entry ${i}: "${key}" must be a range like "0-7", "3" or "all", got ${JSON.stringify(v)}`);
  return r;
}

function overlaps(a: IdRange | null, b: IdRange | null): boolean {
  return a === null || b === null || (a.lo <= b.hi && b.lo <= a.hi);
}

function describe(r: BackendReplica): string {
  return `${r.url}, layers ${formatIdRange(r.layers)}, experts ${formatIdRange(r.experts)}`;
}

/**
 * owner[layer * numExperts + expert] = index of the replica that serves it. BackendsConfigError when a range
 * reaches past the model or some expert has no owner (overlaps were refused by parseReplicas).
 */
export function ownerTable(replicas: readonly BackendReplica[], numLayers: number, numExperts: number): Uint8Array {
  replicas.forEach((r, i) => {
    if (r.layers && r.layers.hi >= numLayers) throw new BackendsConfigError(`entry ${i} (${describe(r)}) reaches past the model's layers 0-${numLayers - 1}`);
    if (r.experts && r.experts.hi >= numExperts) throw new BackendsConfigError(`entry ${i} (${describe(r)}) reaches past the model's experts 0-${numExperts - 1}`);
  });
  const owner = new Uint8Array(numLayers * numExperts);
  const missing: string[] = [];
  for (let l = 0; l < numLayers; l++) {
    for (let e = 0; e < numExperts; e++) {
      const i = replicas.findIndex((r) => inIdRange(r.layers, l) && inIdRange(r.experts, e));
      if (i < 0) missing.push(`layer ${l} expert ${e}`);
      else owner[l * numExperts + e] = i;
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 4).join(', ') + (missing.length > 4 ? ` and ${missing.length - 4} more` : '');
    throw new BackendsConfigError(`no replica serves ${shown} (the model has ${numLayers} layers x ${numExperts} experts; every one needs an owner)`);
  }
  return owner;
}
