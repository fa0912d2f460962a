// Fuzz of the hot-set parsers (src/hotset/spec.ts) and their resolution against a model (src/hotset/resolve.ts):
// whatever an operator writes in HOT_EXPERTS or sends to PUT /admin/hot-set, the answer is a HotSetSpec or a
// HotSetError (a 400 naming the entry), and a spec resolves to a hot set of existing, sorted, distinct experts
// within HOT_BUDGET_MB, or to a HotSetError; nothing else escapes.
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, type Manifest } from '../../../src/format/manifest';
import { resolveHotSet, expertHeapBytes } from '../../../src/hotset/resolve';
import { HotSetError, parseHotExperts, parseHotSetBody, type HotSetSpec } from '../../../src/hotset/spec';
import { fuzzParams, fuzzRuns, thrown } from '../../helpers/fuzz';

let manifest: Manifest;
beforeAll(async () => {
  manifest = parseManifest(JSON.parse(await readFile('models/default/manifest.json', 'utf8')));
});

function specOrError(fn: () => HotSetSpec): HotSetSpec | null {
  let spec: HotSetSpec | null = null;
  const e = thrown(() => (spec = fn()));
  if (e !== undefined && !(e instanceof HotSetError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
  if (e instanceof HotSetError && (e.status !== 400 || !e.message)) throw new Error(`HotSetError without a 400 and a message: ${e.message}`);
  return spec;
}

/** Resolves `spec`; a result must be a consistent hot set of this model within the budget. */
function checkResolution(spec: HotSetSpec, budget: number | null): void {
  const { numLayers: L, numExperts: E } = manifest.architecture;
  let bytes = 0;
  const e = thrown(() => {
    const h = resolveHotSet(spec, manifest, budget);
    if (h.layers.length !== L) throw new Error(`${h.layers.length} layers, the model has ${L}`);
    let count = 0;
    h.layers.forEach((row, l) =>
      row.forEach((x, i) => {
        if (!Number.isInteger(x) || x < 0 || x >= E) throw new Error(`layer ${l}: expert ${x} does not exist`);
        if (i > 0 && row[i - 1]! >= x) throw new Error(`layer ${l}: experts not sorted and distinct: ${row.join(',')}`);
        bytes += expertHeapBytes(manifest, l, x);
        count++;
      }),
    );
    if (h.count !== count || h.bytes !== bytes) throw new Error(`count/bytes ${h.count}/${h.bytes} do not add up (${count}/${bytes})`);
    if (budget !== null && h.bytes > budget) throw new Error(`${h.bytes} bytes over the budget ${budget}`);
  });
  if (e !== undefined && !(e instanceof HotSetError)) throw new Error(`resolve escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
}

const layerKey = fc.oneof(fc.constantFrom('0', '1', '2', '7', '-1', '01', '1.0', '1e0', ' 1', '99999', '100000', '__proto__', ''), fc.string({ maxLength: 6 }));
const expertId = fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(1.5, 2 ** 31, 2 ** 53, -0, 1e308), fc.jsonValue({ maxDepth: 1 }));
const explicit = fc.record({ layers: fc.dictionary(layerKey, fc.oneof({ weight: 4, arbitrary: fc.array(expertId, { maxLength: 10 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }), { maxKeys: 4 }) });
const preset = fc.oneof(
  fc.constantFrom('all', 'none', 'auto', '0%', '50%', '100%', '100.0%', '12.5%', '101%', '-5%', '50', '%', 'ALL', ' all', '1e2%', '99.9999999999%'),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const body = fc.oneof(
  { weight: 3, arbitrary: explicit.map((v) => v as unknown) },
  { weight: 2, arbitrary: fc.record({ preset: fc.oneof(preset, fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.tuple(explicit, preset).map(([e, p]) => ({ ...e, preset: p })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const budget = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 400_000 }), fc.constantFrom(1, 2 ** 53));

describe('hot-set parser fuzz', () => {
  it(`${fuzzRuns(500)} PUT /admin/hot-set bodies: a spec that resolves consistently, or HotSetError`, () => {
    let specs = 0;
    fc.assert(
      fc.property(body, budget, (b, bud) => {
        const spec = specOrError(() => parseHotSetBody(b));
        if (spec) {
          specs++;
          checkResolution(spec, bud);
        }
      }),
      fuzzParams(500),
    );
    expect(specs).toBeGreaterThan(0);
  });

  it(`${fuzzRuns(500)} HOT_EXPERTS values (presets, JSON text, broken JSON): a spec or HotSetError`, () => {
    const text = fc.oneof(
      preset,
      explicit.map((v) => JSON.stringify(v)),
      explicit.map((v) => JSON.stringify(v).slice(0, -1)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
      fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `{${s}`),
    );
    fc.assert(
      fc.property(text, budget, (t, bud) => {
        const spec = specOrError(() => parseHotExperts(t));
        if (spec) checkResolution(spec, bud);
      }),
      fuzzParams(500),
    );
  });
});
