// Step 3: tokenizes every split with @huggingface/tokenizers — the library the engine itself uses — so
// training, the PyTorch evaluation and the engine see the very same token ids. Writes <split>.ids
// (uint16 little-endian, no BOS) beside each <split>.txt, and prompts.tokens.json for the evaluation.
// Usage: npx tsx models/train/encode.ts <data-dir> <hf-dir>
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [dataDir, hfDir] = process.argv.slice(2);
if (!dataDir || !hfDir) throw new Error('usage: encode.ts <data-dir> <hf-dir>');

const json = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
const tok = new Tokenizer(await json(join(hfDir, 'tokenizer.json')) as never, await json(join(hfDir, 'tokenizer_config.json')) as never);
const encode = (text: string): number[] => tok.encode(text, { add_special_tokens: false }).ids;

for (const file of (await readdir(dataDir)).filter((f) => f.endsWith('.txt')).sort()) {
  const text = await readFile(join(dataDir, file), 'utf8');
  const ids = encode(text);
  // the tokenizer must be lossless on every split, else perplexities are not about the text
  if (tok.decode(ids, { skip_special_tokens: false }) !== text) throw new Error(`${file}: decode(encode(text)) != text`);
  const out = new Uint16Array(ids);
  await writeFile(join(dataDir, file.replace(/\.txt$/, '.ids')), new Uint8Array(out.buffer));
  console.log(`${file}: ${text.length} chars -> ${ids.length} tokens (${(text.length / ids.length).toFixed(2)} chars/token)`);
}

// prompts the evaluation scores in PyTorch and in the engine: the held-out sums and the sample prompts
const prompts = (await json(join(dataDir, 'prompts.json'))) as unknown as string[];
await writeFile(join(dataDir, 'prompts.tokens.json'), JSON.stringify(Object.fromEntries(prompts.map((p) => [p, encode(p)]))) + '\n');
