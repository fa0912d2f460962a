// `npx tsx bench/cost/check.ts`: the cost model against recorded runs. Predicts bench:split's latency cells and
// throughput rows and bench:load's run from other measured figures (bench/cost/predict.ts), and records
// predicted vs measured with the error in bench/results/cost-check.{json,md}. --no-record prints only.
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseManifest } from '../../src/format/manifest';
import { edgeFigures, backendFigures, shardFigures } from '../../src/cost/measured';
import { expertShare, modelShape } from '../../src/cost/model-shape';
import type { BackendSpeed } from '../../src/cost/speed';
import { predictLoad, predictSplit, predictTiers, type LoadRecord, type Prediction, type SplitRecord, type TiersRecord } from './predict';
import { explain } from './explain';

const R = 'bench/results';
const read = (f: string) => JSON.parse(readFileSync(`${R}/${f}`, 'utf8'));

// mean token count of bench/load/run.ts's eight prompts after models/default's chat template (encodeChat): 15, 22,
// 22, 22, 24, 23, 17, 15
const LOAD_PROMPT_TOKENS = 20;
// loopback WebSocket round trip, measured in local workerd (/work/shared/pitfalls.md, 4 KB payloads)
const LOOPBACK_RTT_MS = 0.1;
// tiers.md's decode table was measured by `npm run bench:tiers -- --max-minutes 38` on this date (the json's top-level
// date is its later `--only memory` run)
const TIERS_DECODE_DATE = '2026-12-04';

export function checkPredictions(): Prediction[] {
  const split = read('split.json') as SplitRecord;
  const backend = backendFigures(read('backend.json'), split, 'cpu');
  const out = predictSplit(split, backend.callOverheadMs.value);
  const speed: BackendSpeed = { kind: 'measured', gbps: backend.expertGBps.value, overheadMs: backend.callOverheadMs.value, label: 'cpu backend' };
  const manifest = parseManifest(JSON.parse(readFileSync('models/default/manifest.json', 'utf8')));
  const edge = edgeFigures(read('shapes.json'), manifest.name);
  const granite = '.cache/models/granite-shaped-q4_0/manifest.json';
  if (existsSync(granite)) {
    const g = parseManifest(JSON.parse(readFileSync(granite, 'utf8')));
    const gShape = modelShape(g);
    const gEdge = edgeFigures(read('shapes.json'), g.name);
    const tiers = read('tiers.json') as TiersRecord & { decodeFrom?: string };
    const shard = shardFigures(tiers);
    const perLayerMs = ((1000 / gEdge.decodeTps.value) * expertShare(gShape)) / gShape.layers;
    out.push(...predictTiers(tiers, gShape, 1000 / gEdge.decodeTps.value, gEdge.decodeTps.source, speed, Math.max(0, shard.callMs.value - perLayerMs), LOOPBACK_RTT_MS, TIERS_DECODE_DATE));
  } else process.stderr.write(`bench:tiers predictions skipped: ${granite} not found (npm run make:granite -- --quant q4_0)\n`);
  out.push(...predictLoad(read('load.json') as LoadRecord, modelShape(manifest), 1000 / edge.decodeTps.value, 1000 / edge.prefillTps.value, edge.decodeTps.source, speed, LOAD_PROMPT_TOKENS, LOOPBACK_RTT_MS));
  return out;
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
const n = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));

function render(rows: Prediction[], meta: { date: string; commit: string; uptime: string }): string {
  const within = rows.filter((r) => Math.abs(r.error) <= 0.2).length;
  const out = [
    '# The cost model against recorded runs',
    '',
    `\`npx tsx bench/cost/check.ts\` — ${meta.date}, commit ${meta.commit}; \`uptime\`: ${meta.uptime}. The predictions use src/cost (the \`cost\` command's arithmetic) on inputs other than the numbers predicted; bench/cost/predict.ts says which. **${within} of ${rows.length} within 20%**; the others are explained below the table.`,
    '',
    '| run | what | unit | predicted | measured | error | within 20% |',
    '|---|---|---|---:|---:|---:|:---:|',
    ...rows.map((r) => `| ${r.run} | ${r.what} | ${r.unit} | ${n(r.predicted)} | ${n(r.measured)} | ${pct(r.error)} | ${Math.abs(r.error) <= 0.2 ? 'yes' : '**no**'} |`),
    '',
    '## Inputs of each prediction',
    '',
    ...[...new Set(rows.map((r) => `- ${r.run}, ${r.what.split(',')[0]}: ${r.inputs}`))],
    '',
    '## Where the model and the runs part',
    '',
    ...explain(rows).map((l) => `- ${l}`),
    '',
  ];
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = checkPredictions();
  const meta = {
    date: new Date().toISOString(),
    commit: execSync('git rev-parse --short HEAD').toString().trim(),
    uptime: execSync('uptime').toString().trim(),
  };
  const md = render(rows, meta);
  if (process.argv.includes('--no-record')) process.stdout.write(md);
  else {
    writeFileSync(`${R}/cost-check.json`, JSON.stringify({ ...meta, command: 'npx tsx bench/cost/check.ts', rows }, null, 2) + '\n');
    writeFileSync(`${R}/cost-check.md`, md);
    process.stdout.write(md);
  }
}
