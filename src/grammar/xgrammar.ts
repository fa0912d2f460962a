// Grammars compiled against a model's vocabulary with xgrammar (@mlc-ai/web-xgrammar, vendored for workerd by
// wasm/vendor-xgrammar.mjs), and the per-generation matcher that masks each step's logits (a TokenConstraint).
import xgrammar, { useXgrammarWasm, xgrammarMemoryBytes } from '../../wasm/build/xgrammar.js';
import type { TokenConstraint, Vocabulary } from '../engine/api';
import { xgrammarWasm } from './wasm-source';

type Compiler = Awaited<ReturnType<typeof xgrammar.GrammarCompiler.createGrammarCompiler>>;
type Compiled = Awaited<ReturnType<Compiler['compileJSONSchema']>>;

/** What a route asks for: any JSON value, a JSON schema, or an EBNF grammar (tool-call formats). */
export type GrammarSpec = { kind: 'json' } | { kind: 'json_schema'; schema: unknown; strict: boolean } | { kind: 'ebnf'; ebnf: string };

let ready: Promise<boolean> | null = null;
const compilers = new WeakMap<Vocabulary, Promise<Compiler>>();

/** True once xgrammar is instantiated; false where no WASM source was provided (the deployment cannot constrain). */
export function grammarsAvailable(): Promise<boolean> {
  ready ??= (async () => {
    const source = xgrammarWasm();
    if (!source) return false;
    useXgrammarWasm(await source());
    return true;
  })();
  return ready;
}

/** One compiler per vocabulary: its tokenizer info (the vocabulary's decoded tries) is built once and reused. */
function compilerFor(vocab: Vocabulary): Promise<Compiler> {
  let c = compilers.get(vocab);
  if (!c) {
    c = (async () => {
      const { tokens, type } = vocab.encoded();
      const info = await xgrammar.TokenizerInfo.createTokenizerInfo(tokens, type, false, vocab.size, [...vocab.eosTokenIds]);
      // no compiled-grammar cache: every distinct schema would stay in the isolate's memory for good
      return xgrammar.GrammarCompiler.createGrammarCompiler(info, false);
    })();
    compilers.set(vocab, c);
  }
  return c;
}

/**
 * Compiles `spec` (a bad schema or grammar throws xgrammar's message) and makes `count` matchers of it, one per
 * choice, all at once: the compiled grammar is freed with the last of them, so none may come later. Compact JSON
 * (indent -1, no free whitespace): a small model can repeat free whitespace until max_tokens.
 */
export async function compileGrammar(vocab: Vocabulary, spec: GrammarSpec, count = 1): Promise<TokenConstraint[]> {
  const compiler = await compilerFor(vocab);
  let compiled: Compiled;
  if (spec.kind === 'json') compiled = await compiler.compileGrammar(JSON_OBJECT_EBNF, 'root');
  else if (spec.kind === 'ebnf') compiled = await compiler.compileGrammar(spec.ebnf, 'root');
  else compiled = await compiler.compileJSONSchema(JSON.stringify(spec.schema), false, -1, [', ', ': '], spec.strict);
  let live = count;
  const matchers: TokenConstraint[] = [];
  try {
    for (let i = 0; i < count; i++) matchers.push(matcherOf(await xgrammar.GrammarMatcher.createGrammarMatcher(compiled, undefined, false, 0), () => --live === 0 && compiled.dispose()));
  } catch (e) {
    for (const m of matchers) m.release();
    if (matchers.length === 0) compiled.dispose();
    throw e;
  }
  return matchers;
}

type Matcher = Awaited<ReturnType<typeof xgrammar.GrammarMatcher.createGrammarMatcher>>;

function matcherOf(m: Matcher, onRelease: () => void): TokenConstraint {
  let released = false;
  return {
    async mask(logits) {
      const bits = await m.getNextTokenBitmask(); // bit i set: token i allowed; ids past the tokenizer's are never
      for (let i = 0; i < logits.length; i++) if (!(((bits[i >>> 5] ?? 0) >>> (i & 31)) & 1)) logits[i] = -Infinity;
    },
    accept: (token) => m.acceptToken(token),
    get done() {
      return m.isTerminated();
    },
    release() {
      if (released) return;
      released = true;
      m.dispose();
      onRelease();
    },
  };
}

/** Bytes of xgrammar's WASM memory now (0 before its first use). */
export function grammarMemoryBytes(): number {
  return xgrammarMemoryBytes();
}

/**
 * `json_object`: an object with any JSON inside, compact (xgrammar's built-in JSON grammar allows free whitespace,
 * which a small model can repeat until max_tokens). OpenAI's json_object mode answers an object, not any value.
 */
const JSON_OBJECT_EBNF = String.raw`
root ::= object
value ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ( string ": " value ( ", " string ": " value )* )? "}"
array ::= "[" ( value ( ", " value )* )? "]"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] ) )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [+-]? [0-9]+ )?
`;
