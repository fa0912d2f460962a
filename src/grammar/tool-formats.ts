// How a model writes tool calls, by chat-template family: Hermes/Qwen `<tool_call>{json}</tool_call>`, granite
// `<|tool_call|>[{json}, ...]`, or bare JSON (`{"name", "arguments"}` or a list of them) for templates without a
// tool syntax. Parses a reply into calls, and gives the JSON schema that forces a call (`required`, a named tool).
import type { ToolDefinition } from '../engine/api';

export type ToolCallFormat = 'hermes' | 'granite' | 'json';

export interface ParsedCall {
  name: string;
  arguments: unknown;
}

/** The manifest's choice, else the template's tool syntax, else bare JSON. */
export function toolCallFormatOf(model: { toolCallFormat?: ToolCallFormat; chatTemplate?: string | null }): ToolCallFormat {
  if (model.toolCallFormat) return model.toolCallFormat;
  const t = model.chatTemplate ?? '';
  if (t.includes('<|tool_call|>')) return 'granite';
  if (t.includes('<tool_call>')) return 'hermes';
  return 'json';
}

/** True when the template renders `tools` itself; else the route describes them in a system message. */
export function templateTakesTools(template: string | null | undefined): boolean {
  return /\btools\b/.test(template ?? '');
}

function asCalls(v: unknown): ParsedCall[] | null {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return null;
  const calls: ParsedCall[] = [];
  for (const c of list) {
    if (!c || typeof c !== 'object') return null;
    const o = c as { name?: unknown; arguments?: unknown; parameters?: unknown };
    if (typeof o.name !== 'string') return null;
    calls.push({ name: o.name, arguments: o.arguments ?? o.parameters ?? {} });
  }
  return calls;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The calls in a reply, and the text around them (null: no call, the reply is plain content). A call whose JSON
 * does not parse leaves the reply as content: the client sees what the model wrote rather than a guess.
 */
export function parseToolCalls(format: ToolCallFormat, text: string): { calls: ParsedCall[]; content: string } | null {
  if (format === 'hermes') {
    const re = /<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g;
    const calls: ParsedCall[] = [];
    for (const m of text.matchAll(re)) {
      const c = asCalls(json(m[1]!));
      if (!c) return null;
      calls.push(...c);
    }
    return calls.length ? { calls, content: text.replace(re, '').trim() } : null;
  }
  if (format === 'granite') {
    const at = text.indexOf('<|tool_call|>');
    if (at < 0) return null;
    const calls = asCalls(json(text.slice(at + '<|tool_call|>'.length).trim()));
    return calls ? { calls, content: text.slice(0, at).trim() } : null;
  }
  const calls = asCalls(json(text.trim()));
  return calls ? { calls, content: '' } : null;
}

/**
 * The JSON a forced call is decoded as (whatever the family: the grammar fixes the syntax, so bare JSON): one call
 * `{"name": ..., "arguments": ...}` of one of `tools`, or with parallel calls a list of 1..maxCalls of them.
 */
export function forcedCallSchema(tools: readonly ToolDefinition[], parallel: boolean, maxCalls: number): Record<string, unknown> {
  const one = tools.map((t) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: 'object' } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  const call = one.length === 1 ? one[0]! : { anyOf: one };
  return parallel && maxCalls > 1 ? { type: 'array', items: call, minItems: 1, maxItems: maxCalls } : call;
}

/**
 * Streaming with tools on `auto`: how much of the reply so far can go out as content. Hermes and granite calls start
 * with a marker, so text before it is released (holding back a tail that may be the marker's beginning); a bare-JSON
 * reply is a call only if it starts with `{` or `[`, so any other reply is released as it comes.
 */
export class ToolCallStream {
  private text = '';
  private released = 0;
  private holdAll = false;

  constructor(private readonly format: ToolCallFormat) {}

  /** Adds `delta`; returns what can be sent as content now. */
  push(delta: string): string {
    this.text += delta;
    if (this.holdAll) return '';
    let upTo: number;
    if (this.format === 'json') {
      const start = this.text.trimStart();
      if (start === '') return '';
      if (this.released === 0 && (start[0] === '{' || start[0] === '[')) {
        this.holdAll = true;
        return '';
      }
      upTo = this.text.length;
    } else {
      const marker = this.format === 'hermes' ? '<tool_call>' : '<|tool_call|>';
      const at = this.text.indexOf(marker, this.released);
      if (at >= 0) {
        this.holdAll = true;
        upTo = at;
      } else {
        upTo = this.text.length;
        for (let n = Math.min(marker.length - 1, this.text.length); n > 0; n--) {
          if (this.text.endsWith(marker.slice(0, n))) {
            upTo -= n;
            break;
          }
        }
      }
    }
    const out = this.text.slice(this.released, Math.max(this.released, upTo));
    this.released = Math.max(this.released, upTo);
    return out;
  }

  /** The whole reply, and the part of it not sent yet. */
  end(): { text: string; unsent: string } {
    return { text: this.text, unsent: this.text.slice(this.released) };
  }
}
