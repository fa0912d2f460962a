// Writes the merge benchmark's table into the default model's card, between markers (before "## Reproduce" the
// first time): the card's other sections come from models/train/card.ts, which a retrain reruns; that drops this
// section, as it should, since a retrained model needs a new measurement.
import { readFile, writeFile } from 'node:fs/promises';
import { mergeTable, type MergeResults } from './report';

const START = '<!-- bench/merge: start -->';
const END = '<!-- bench/merge: end -->';

export function cardSection(r: MergeResults): string {
  return [
    START,
    '## Fewer experts: pruned vs merged',
    '',
    `\`npm run cli -- merge-experts\` removes the least routed experts of each layer (routing statistics of the calibration set) and`,
    'either prunes them or merges each into the kept expert whose outputs on its tokens are most alike (neurons aligned, weights',
    'averaged by routing frequency, down projection and router row refitted on calibration tokens; [docs/cli.md](../../docs/cli.md#fewer-experts-merge-experts)).',
    `Held-out perplexity over ${r.pplTokens ? `the first ${r.pplTokens} tokens of` : 'the whole'} held-out split of each domain, the 100 held-out sums, and the share of held-out`,
    'routings a 50% hot set serves (planned from each model\'s own statistics; the last column at the original model\'s 50% in bytes).',
    'No fine-tune after merging was run (see bench/results/merge.md).',
    '',
    mergeTable(r),
    '',
    `Measured ${r.date.slice(0, 10)} by \`${r.command}\` (bench/results/merge.md).`,
    END,
  ].join('\n');
}

export async function writeCardSection(path: string, r: MergeResults): Promise<void> {
  const card = await readFile(path, 'utf8');
  const section = cardSection(r);
  const a = card.indexOf(START);
  const b = card.indexOf(END);
  let next: string;
  if (a >= 0 && b > a) next = card.slice(0, a) + section + card.slice(b + END.length);
  else {
    const at = card.indexOf('## Reproduce');
    next = at >= 0 ? `${card.slice(0, at)}${section}\n\n${card.slice(at)}` : `${card.trimEnd()}\n\n${section}\n`;
  }
  await writeFile(path, next);
}
