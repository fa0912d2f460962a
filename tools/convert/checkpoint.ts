// A Hugging Face checkpoint folder read lazily: one or more *.safetensors (or the shards a
// model.safetensors.index.json names), headers parsed up front, each tensor read from disk when asked for,
// so shards larger than memory or than Node's 2 GB readFile limit convert fine.
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseHeader, readHeaderLength, SAFETENSORS_DTYPE_BYTES, SafetensorsError, toFloat32, type SafetensorsHeader, type SafetensorsTensor } from './safetensors';
import { readRange } from './read-range';

export interface Checkpoint {
  /** every tensor name in the checkpoint */
  names(): string[];
  entry(name: string): SafetensorsTensor | undefined;
  /** one tensor as float32 values, or elements [start, start + count) of it (a slice of a merged tensor) */
  read(name: string, range?: { start: number; count: number }): Promise<Float32Array>;
  close(): Promise<void>;
}

const INDEX = 'model.safetensors.index.json';

export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const index = await readJsonIfPresent(join(dir, INDEX));
  const map = index === undefined ? undefined : weightMap(index);
  const files = map ? [...new Set(Object.values(map))].sort() : await safetensorsFiles(dir);
  const handles: FileHandle[] = [];
  const where = new Map<string, { file: FileHandle; path: string; t: SafetensorsTensor }>();
  try {
    for (const f of files) {
      const path = join(dir, f);
      const file = await open(path, 'r');
      handles.push(file);
      for (const t of (await readHeader(file, path)).tensors.values()) {
        const prev = where.get(t.name);
        if (prev) throw new Error(`tensor ${t.name} is in both ${prev.path} and ${path}`);
        where.set(t.name, { file, path, t });
      }
    }
    // the index must agree with the shards it names
    for (const [name, f] of Object.entries(map ?? {})) {
      if (where.get(name)?.path !== join(dir, f)) throw new Error(`${INDEX} places ${name} in ${f}, but it is not there`);
    }
  } catch (e) {
    await Promise.all(handles.map((h) => h.close()));
    throw e;
  }
  return {
    names: () => [...where.keys()],
    entry: (name) => where.get(name)?.t,
    async read(name, range) {
      const w = where.get(name);
      if (!w) throw new Error(`tensor ${name} is not in the checkpoint`);
      if (!range) return toFloat32(w.t, await readAt(w.file, w.t.offset, w.t.bytes));
      // only the slice's bytes: a merged expert tensor is read once per expert, not whole each time
      const size = SAFETENSORS_DTYPE_BYTES[w.t.dtype];
      if (range.start < 0 || range.count < 0 || (range.start + range.count) * size > w.t.bytes) throw new Error(`elements [${range.start}, ${range.start + range.count}) are outside ${name}`);
      const part = { ...w.t, bytes: range.count * size };
      return toFloat32(part, await readAt(w.file, w.t.offset + range.start * size, part.bytes));
    },
    async close() {
      await Promise.all(handles.map((h) => h.close()));
    },
  };
}

async function readHeader(file: FileHandle, path: string): Promise<SafetensorsHeader> {
  try {
    const size = (await file.stat()).size;
    const n = readHeaderLength(await readAt(file, 0, Math.min(8, size)), size);
    return parseHeader(await readAt(file, 8, n), size);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message.replace(/^invalid safetensors file: /, '')}`);
    throw e;
  }
}

async function safetensorsFiles(dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  if (files.length === 0) throw new Error(`no *.safetensors file in ${dir}`);
  return files;
}

function weightMap(index: unknown): Record<string, string> {
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || !Object.values(map).every((v) => typeof v === 'string' && v.endsWith('.safetensors') && !v.includes('/'))) {
    throw new Error(`${INDEX} has no valid weight_map`);
  }
  return map as Record<string, string>;
}

/** Parsed JSON of a file, or undefined when the file does not exist. */
export async function readJsonIfPresent(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

const readAt = (file: FileHandle, offset: number, length: number) => readRange(file, offset, length, (msg) => new SafetensorsError(msg));
