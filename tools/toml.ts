// A small TOML writer for the wrangler configurations `plan --write` generates: scalars, arrays of scalars,
// tables and arrays of tables of scalars, which is all a wrangler.toml needs. Strings as TOML basic strings
// (JSON's escapes are a subset of TOML's); wrangler's own parser reads the result back in the tests.

export type TomlScalar = string | number | boolean;
export type TomlValue = TomlScalar | TomlScalar[] | TomlTable | TomlTable[];
export interface TomlTable {
  [key: string]: TomlValue | undefined;
}

/** `doc` as TOML, after `comment` lines (each prefixed with "# "). Undefined values are left out. */
export function toToml(doc: TomlTable, comment: readonly string[] = []): string {
  const out = comment.map((c) => `# ${c}`.trimEnd());
  writeTable(out, doc, []);
  return out.join('\n') + '\n';
}

function writeTable(out: string[], table: TomlTable, path: string[]): void {
  const entries = Object.entries(table).filter((kv): kv is [string, TomlValue] => kv[1] !== undefined);
  for (const [k, v] of entries) if (!isTable(v) && !isTableArray(v)) out.push(`${key(k)} = ${value(v as TomlScalar | TomlScalar[], [...path, k])}`);
  for (const [k, v] of entries) {
    if (isTable(v)) {
      out.push('', `[${[...path, k].map(key).join('.')}]`);
      writeTable(out, v, [...path, k]);
    } else if (isTableArray(v)) {
      for (const t of v) {
        out.push('', `[[${[...path, k].map(key).join('.')}]]`);
        for (const [ik, iv] of Object.entries(t)) {
          if (iv === undefined) continue;
          if (isTable(iv) || isTableArray(iv)) throw new TypeError(`toToml: ${[...path, k, ik].join('.')}: tables inside arrays of tables are not supported`);
          out.push(`${key(ik)} = ${value(iv as TomlScalar | TomlScalar[], [...path, k, ik])}`);
        }
      }
    }
  }
}

const isTable = (v: TomlValue): v is TomlTable => typeof v === 'object' && !Array.isArray(v);
const isTableArray = (v: TomlValue): v is TomlTable[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'object' && !Array.isArray(x));

function key(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function value(v: TomlScalar | TomlScalar[], path: string[]): string {
  if (Array.isArray(v)) return `[${v.map((x) => value(x, path)).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v).replace(/\x7f/g, '\\u007F'); // DEL: JSON keeps it, TOML may not
  if (typeof v === 'boolean') return String(v);
  if (!Number.isFinite(v)) throw new TypeError(`toToml: ${path.join('.')} is ${v}, which TOML cannot hold here`);
  return String(v);
}
