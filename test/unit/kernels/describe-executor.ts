// describeExecutor: runs the same conformance cases against one executor. Each case compares the executor's
// output to the TypeScript reference (ts-ref), to a float64 definition and, for matmul, to onnxruntime-web.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createReferenceKernels } from '../../../src/kernels/reference';
import type { Kernels } from '../../../src/kernels/types';
import { weightCases, type Case } from './cases-matmul';
import { kvCases } from './cases-kv';
import { opCases } from './cases-ops';
import { Arena, report } from './harness';

const cases: Case[] = [...weightCases(), ...opCases(), ...kvCases()];

// ts-ref's outputs are computed once per case and shared by every executor's describe block (webgpu.test.ts too).
let reference: Kernels | undefined;
const refOutputs = new Map<string, Float32Array[]>();
export function referenceOutputs(c: Case): Float32Array[] {
  let out = refOutputs.get(c.name);
  if (!out) {
    reference ??= createReferenceKernels();
    const a = new Arena(reference);
    try { out = c.exec(reference, a); } finally { a.releaseAll(); }
    refOutputs.set(c.name, out);
  }
  return out;
}

/**
 * Registers the conformance suite for one executor. `make` builds it (a failure to build, e.g. a missing
 * .wasm, fails every case); `skipReason`, when given, skips the block and says why in its title.
 */
export function describeExecutor(name: string, make: () => Promise<Kernels>, skipReason?: string): void {
  const title = skipReason ? `${name} (skipped: ${skipReason})` : name;
  describe.skipIf(skipReason !== undefined)(title, () => {
    let k: Kernels;
    beforeAll(async () => { k = await make(); });
    afterAll(() => {
      if (process.env.CONFORMANCE_VERBOSE && report.length) console.log(report.splice(0).join('\n'));
    });
    for (const c of cases) {
      it(c.name, async () => {
        const a = new Arena(k);
        let got: Float32Array[];
        try { got = c.exec(k, a); } finally { a.releaseAll(); }
        await c.verify(got, referenceOutputs(c), `${name}: ${c.name}`);
      });
    }
  });
}
