// Builds the routing-calibration prompt sets (JSONL of {"domain", "text"}) from the default model's own
// data split: models/train/data.py cuts the corpus (last 5% of each domain held out, seeded arithmetic),
// this script cuts each split into prompt-sized windows. calibration.jsonl comes from the training splits
// (what `profile` learns from), heldout.jsonl from the held-out splits (what the hot-set benchmark and the
// skill-map accuracy are measured on). Written to a gitignored folder; nothing from the corpus is committed.
//   npx tsx models/calibration/build.ts [--out models/calibration/out] [--corpus ../shared/corpus]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { seededRandom } from '../../src/engine/sampler';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_OUT = join(ROOT, 'models/calibration/out');
export const DOMAINS = ['verse', 'code', 'arith'] as const;

export interface BuildOptions {
  out: string;
  corpus: string;
  /** prompts per domain from the training split */
  calibration: number;
  /** prompts per domain from the held-out split */
  heldout: number;
  /** window length range, characters (whole lines) */
  minChars: number;
  maxChars: number;
  seed: number;
}

export const DEFAULTS: Omit<BuildOptions, 'out' | 'corpus'> = { calibration: 160, heldout: 40, minChars: 48, maxChars: 320, seed: 5 };

/** ../shared/corpus beside the checkout, or under MOE_EDGE_SHARED. */
export function defaultCorpus(): string {
  const candidates = [process.env.MOE_EDGE_SHARED, join(ROOT, '../shared')].filter((p): p is string => !!p).map((p) => join(p, 'corpus'));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`corpus not found in ${candidates.join(', ')} (set MOE_EDGE_SHARED or pass --corpus)`);
  return found;
}

/**
 * Consecutive, non-overlapping windows of whole lines, each at least a random length in [min, max]
 * characters (leading blank lines dropped); the text's split is respected because each split is cut alone.
 */
export function windows(text: string, rand: () => number, minChars: number, maxChars: number): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  let cur: string[] = [];
  let len = 0;
  let target = minChars + Math.floor(rand() * (maxChars - minChars + 1));
  for (const line of lines) {
    if (cur.length === 0 && line.trim() === '') continue;
    cur.push(line);
    len += line.length + 1;
    if (len >= target) {
      out.push(cur.join('\n') + '\n');
      cur = [];
      len = 0;
      target = minChars + Math.floor(rand() * (maxChars - minChars + 1));
    }
  }
  return out;
}

/** n windows spread evenly over the list (all of them when there are fewer). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor(((i + 0.5) * items.length) / n)]);
}

export async function buildCalibration(o: BuildOptions): Promise<{ calibration: string; heldout: string; counts: Record<string, { calibration: number; heldout: number }> }> {
  const data = join(o.out, 'data');
  await mkdir(data, { recursive: true });
  // the trainer's own split and arithmetic generator, run as is (stdlib Python, a few seconds)
  execFileSync(process.env.PYTHON ?? 'python3', [join(ROOT, 'models/train/data.py'), '--corpus', o.corpus, '--out', data], { stdio: ['ignore', 'ignore', 'inherit'] });
  const rand = seededRandom(o.seed);
  const sets = { calibration: [] as string[], heldout: [] as string[] };
  const counts: Record<string, { calibration: number; heldout: number }> = {};
  for (const domain of DOMAINS) {
    counts[domain] = { calibration: 0, heldout: 0 };
    for (const [split, set, n] of [['train', 'calibration', o.calibration], ['heldout', 'heldout', o.heldout]] as const) {
      const text = await readFile(join(data, `${domain}.${split}.txt`), 'utf8');
      const picked = spread(windows(text, rand, o.minChars, o.maxChars), n);
      if (picked.length < n) throw new Error(`${domain}.${split}.txt gives only ${picked.length} windows, ${n} wanted`);
      for (const w of picked) sets[set].push(JSON.stringify({ domain, text: w }));
      counts[domain][set] = picked.length;
    }
  }
  const calibration = join(o.out, 'calibration.jsonl');
  const heldout = join(o.out, 'heldout.jsonl');
  await writeFile(calibration, sets.calibration.join('\n') + '\n');
  await writeFile(heldout, sets.heldout.join('\n') + '\n');
  return { calibration, heldout, counts };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: DEFAULT_OUT }, corpus: { type: 'string' },
      calibration: { type: 'string' }, heldout: { type: 'string' }, seed: { type: 'string' },
    },
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const r = await buildCalibration({
    ...DEFAULTS,
    out: values.out!,
    corpus: values.corpus ?? defaultCorpus(),
    calibration: num(values.calibration, DEFAULTS.calibration),
    heldout: num(values.heldout, DEFAULTS.heldout),
    seed: num(values.seed, DEFAULTS.seed),
  });
  process.stdout.write(`wrote ${r.calibration} and ${r.heldout}: ${JSON.stringify(r.counts)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
