// Messages between the cpu device and its worker threads (one shape, typed on both sides).
import type { ExpertEntries, ExpertGroup } from './device';

export type CpuWorkerRequest =
  | { type: 'load'; id: number; layer: number; expert: number; entries: ExpertEntries; bytes: Uint8Array }
  | { type: 'run'; id: number; layer: number; groups: ExpertGroup[] };

export type CpuWorkerReply =
  | { id: number; ok: true; bytes: number }
  | { id: number; ok: true; ys: Float32Array[] }
  | { id: number; ok: false; error: string };
