// Facts for the model card: parameter counts and sizes from a manifest, training figures from the log.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ModelFacts {
  params_total: number;
  /** parameters one token uses: everything but the experts the router did not pick */
  params_active: number;
  params_per_expert: number;
  bytes_total: number;
  bytes_trunk: number;
  bytes_experts: number;
  quant: { trunk: string; experts: string };
  architecture: Json;
}

export function modelFacts(manifest: Json): ModelFacts {
  const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
  let total = 0;
  let perExpert = 0;
  for (const t of Object.values(manifest.tensors as Record<string, Json>)) {
    total += numel(t.shape);
    if (t.object === 'experts/0/0.bin') perExpert += numel(t.shape);
  }
  const a = manifest.architecture;
  const objects = Object.entries(manifest.objects as Record<string, { bytes: number }>);
  const bytes = (pred: (n: string) => boolean): number => objects.filter(([n]) => pred(n)).reduce((s, [, o]) => s + o.bytes, 0);
  return {
    params_total: total,
    params_active: total - a.numLayers * (a.numExperts - a.topK) * perExpert,
    params_per_expert: perExpert,
    bytes_total: bytes(() => true),
    bytes_trunk: bytes((n) => n === 'trunk.bin'),
    bytes_experts: bytes((n) => n.startsWith('experts/')),
    quant: manifest.quant,
    architecture: a,
  };
}

/** The start and done events of a training log (JSON lines), and the last held-out losses it printed. */
export async function trainingFacts(logPath: string): Promise<Json> {
  const events = (await readFile(logPath, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
  const start = events.find((e) => e.event === 'start');
  const done = events.find((e) => e.event === 'done');
  const heldout = events.filter((e) => e.heldout_loss).at(-1);
  const last = events.filter((e) => typeof e.loss === 'number').at(-1);
  return {
    log: basename(logPath),
    started: start?.time,
    args: start?.args,
    rows: start?.rows,
    steps: done?.steps,
    ended_by: done?.ended_by,
    tokens: done?.tokens,
    minutes: done?.minutes,
    cpu_minutes: done?.cpu_minutes,
    final_train_loss: last?.loss,
    final_heldout_loss: heldout?.heldout_loss,
    torch: start?.torch,
  };
}
