// `npm run bench:matvec`: the mat-vec benchmark in Node, then in workerd, recorded to bench/results/matvec.json
// and bench/results/matvec.md. Options: --rounds --min-ms --slices --pool-mb --stream-mb; --only node|workerd
// prints without recording (a record holds both runtimes measured in one run).
import { mkdir, writeFile } from 'node:fs/promises';
import { parseBenchArgs } from './args';
import { GRANITE } from './cases';
import { defaultModelDims } from './default-model';
import { machineInfo } from './machine';
import type { MeasureOptions } from './measure';
import { runNode } from './node';
import { renderMarkdown, TARGET_Q8_RATIO, toRecord, type MatvecDoc } from './report';
import { runWorkerd } from './workerd';

const RESULTS = new URL('../results/', import.meta.url);

const args = parseBenchArgs(process.argv.slice(2));
const { only, ...opts } = args;
const options: MeasureOptions = opts;
const dims = await defaultModelDims();
const machine = machineInfo();
console.log(`${machine.cpu} (${machine.cpuId}), node ${machine.node}, workerd ${machine.workerd}, load ${machine.loadavg.join(' ')}`);
console.log(`default model: ${dims.source}`);

const models = [GRANITE, dims];
const records = [];
if (only !== 'workerd') records.push(...(await runNode(models, options, console.log)).map((r) => toRecord(r, 'node')));
if (only !== 'node') records.push(...(await runWorkerd(models, options, console.log)).map((r) => toRecord(r, 'workerd')));

const doc: MatvecDoc = {
  benchmark: 'matvec',
  date: new Date().toISOString(),
  command: ['npm run bench:matvec', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  machine,
  options,
  defaultModel: dims.source,
  target: { quant: 'q8_0', ratio_to_stream: TARGET_Q8_RATIO },
  records,
};
const md = renderMarkdown(doc);
if (only) {
  console.log(`\n${md}\n(--only ${only}: not recorded)`);
} else {
  await mkdir(RESULTS, { recursive: true });
  await writeFile(new URL('matvec.json', RESULTS), `${JSON.stringify(doc, null, 2)}\n`);
  await writeFile(new URL('matvec.md', RESULTS), md);
  console.log(`\n${md}\nwrote bench/results/matvec.json and bench/results/matvec.md`);
}
