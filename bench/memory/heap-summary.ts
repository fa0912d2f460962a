// A V8 .heapsnapshot summarized for the memory benchmark: self size by constructor (what holds the JS heap) and,
// for the largest groups, by the constructor of their first strong retainer (who keeps them alive).
// The snapshot format is V8's (fields named in snapshot.meta); see Chrome DevTools' HeapSnapshot loader.

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGroup {
  /** `type:name`: an object's constructor, or the kind of a string, array, code ... */
  group: string;
  count: number;
  selfBytes: number;
  /** the first strong retainers' groups, largest first (top 4) */
  retainers: { group: string; selfBytes: number }[];
}

export interface HeapSummary {
  nodes: number;
  totalSelfBytes: number;
  groups: HeapGroup[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

export function summarizeSnapshot(text: string, top = 25): HeapSummary {
  const s = JSON.parse(text) as SnapshotJson;
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const nodeTypes = s.snapshot.meta.node_types[0];
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const N = nf.length;
  const E = ef.length;
  const [nType, nName, nSelf, nEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  const [eType, eTo] = ['type', 'to_node'].map((f) => ef.indexOf(f));
  const weak = edgeTypes.indexOf('weak');
  const count = s.nodes.length / N;

  const groupOf = (i: number): string => {
    const type = nodeTypes[s.nodes[i * N + nType]];
    if (STRING_TYPES.has(type)) return `(${type})`;
    const name = s.strings[s.nodes[i * N + nName]];
    // numbered system names (e.g. "system / Map (0x...)") and long literal names are grouped by their stem
    return `${type}:${name.length > 60 ? name.slice(0, 60) + '…' : name.replace(/ \(0x[0-9a-f]+\)| @\d+/g, '')}`;
  };
  const groups = new Map<string, { count: number; selfBytes: number; index: number }>();
  const groupIndex = new Int32Array(count);
  const names: string[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const g = groupOf(i);
    let e = groups.get(g);
    if (!e) groups.set(g, (e = { count: 0, selfBytes: 0, index: names.push(g) - 1 }));
    e.count++;
    e.selfBytes += s.nodes[i * N + nSelf];
    total += s.nodes[i * N + nSelf];
    groupIndex[i] = e.index;
  }
  const largest = [...groups.entries()].sort((a, b) => b[1].selfBytes - a[1].selfBytes).slice(0, top);
  const wanted = new Set(largest.map(([, g]) => g.index));

  // first strong retainer of each node of a wanted group: walk every edge once
  const firstRetainer = new Int32Array(count).fill(-1);
  for (let i = 0, edge = 0; i < count; i++) {
    const n = s.nodes[i * N + nEdges];
    for (let k = 0; k < n; k++, edge += E) {
      if (s.edges[edge + eType] === weak) continue;
      const to = s.edges[edge + eTo] / N;
      if (firstRetainer[to] < 0 && wanted.has(groupIndex[to])) firstRetainer[to] = i;
    }
  }
  const byRetainer = new Map<number, Map<string, number>>();
  for (let i = 0; i < count; i++) {
    if (!wanted.has(groupIndex[i])) continue;
    const r = firstRetainer[i] < 0 ? '(root)' : names[groupIndex[firstRetainer[i]]];
    const m = byRetainer.get(groupIndex[i]) ?? new Map<string, number>();
    m.set(r, (m.get(r) ?? 0) + s.nodes[i * N + nSelf]);
    byRetainer.set(groupIndex[i], m);
  }
  return {
    nodes: count,
    totalSelfBytes: total,
    groups: largest.map(([group, g]) => ({
      group,
      count: g.count,
      selfBytes: g.selfBytes,
      retainers: [...(byRetainer.get(g.index) ?? new Map<string, number>()).entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([r, b]) => ({ group: r, selfBytes: b })),
    })),
  };
}

/** The summary as Markdown rows, MiB with one decimal. */
export function renderSummary(title: string, h: HeapSummary): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const out = [`### ${title}`, '', `${h.nodes} objects, ${mib(h.totalSelfBytes)} MiB live (self sizes).`, '', '| group | count | MiB | first retainers (MiB) |', '|---|---|---|---|'];
  for (const g of h.groups) {
    out.push(`| \`${g.group.replace(/\|/g, '\\|').replace(/\n/g, ' ')}\` | ${g.count} | ${mib(g.selfBytes)} | ${g.retainers.map((r) => `${r.group.replace(/\|/g, '\\|').replace(/\n/g, ' ')} ${mib(r.selfBytes)}`).join('; ')} |`);
  }
  return out.join('\n') + '\n';
}
