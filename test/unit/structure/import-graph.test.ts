// The project's import graph, read from the sources: no file imports itself through a cycle (type-only imports
// included), the folders of src/ form a layering (no folder cycle, no folder imports a file of a folder above it),
// and the parts stay apart: src/ (the Worker) reads nothing of tools/, test/, bench/ or gpu-backend/; benchmarks
// read nothing of test/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const PARTS = ['src', 'gpu-backend', 'tools', 'bench', 'test', 'models', 'wasm/dev'];
// `import ... from`, `export ... from`, `import('...')`: relative specifiers only (packages are not ours)
const IMPORT = /(?:^|\s)(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'build' || name === 'results' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from: string, spec: string): string | null {
  for (const ext of ['', '.ts', '.mts', '/index.ts']) {
    const p = resolve(dirname(from), spec + ext);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // next candidate
    }
  }
  return null;
}

/** file -> the project files it imports (paths relative to the root). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const part of PARTS) {
    for (const file of sourceFiles(join(ROOT, part))) {
      const text = readFileSync(file, 'utf8');
      const deps = new Set<string>();
      for (const m of text.matchAll(IMPORT)) {
        const target = resolveImport(file, m[1] ?? m[2]);
        if (target && /\.(ts|mts)$/.test(target)) deps.add(relative(ROOT, target));
      }
      graph.set(relative(ROOT, file), [...deps]);
    }
  }
  return graph;
}

/** Strongly connected components with more than one node (Tarjan), i.e. the cycles. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const graph = importGraph();
const edges = [...graph].flatMap(([from, deps]) => deps.map((to) => ({ from, to })));

describe('import graph', () => {
  it('reads the whole project (a broken reader would pass everything below)', () => {
    expect(graph.size).toBeGreaterThan(200);
    expect(graph.get('src/worker.ts')).toContain('src/app.ts');
  });

  it('has no file cycle, type-only imports included', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('src/ folders form a layering: no folder cycle, none imports a file of a folder above it', () => {
    const folders = new Map<string, string[]>();
    const upward: string[] = [];
    for (const { from, to } of edges) {
      if (!from.startsWith('src/') || !to.startsWith('src/')) continue;
      const a = dirname(from);
      const b = dirname(to);
      if (a === b) continue;
      if (a.startsWith(`${b}/`)) upward.push(`${from} -> ${to}`);
      folders.set(a, [...new Set([...(folders.get(a) ?? []), b])]);
    }
    expect(upward).toEqual([]);
    expect(cycles(folders)).toEqual([]);
  });

  it('the Worker (src/) reads nothing of the tools, tests, benchmarks or the backend; benchmarks nothing of the tests', () => {
    const crossing = edges
      .filter(({ from, to }) =>
        (from.startsWith('src/') && /^(tools|test|bench|gpu-backend|models)\//.test(to)) ||
        (from.startsWith('gpu-backend/') && /^(tools|test|bench)\//.test(to)) ||
        (from.startsWith('bench/') && to.startsWith('test/')))
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(crossing).toEqual([]);
  });
});
