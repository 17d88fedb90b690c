// Owns: running engine steps on the real model inside this process (every head in one store):
// the single-process reference the distributed executor is measured and tested against.
// Must not: schedule or place heads (the engine did); the step's head placement is ignored.

import type { Executor, StepPlan, StepResult } from '../engine/types.js';
import type { LoadedModel } from '../model/weights.js';
import { assert } from '../util/errors.js';
import type { MatmulKernels } from './kernels/types.js';
import { batchOf, type SeqChunk } from './batch.js';
import { LocalForward } from './forward.js';
import { sampleRows, samplingChunks } from './step-sampling.js';

export class LocalExecutor implements Executor {
  readonly forward: LocalForward;
  /** Request id -> sequence id of the forward pass's KV store. */
  private readonly seqOf = new Map<string, number>();
  private nextSeq = 0;

  constructor(model: LoadedModel, kernels: MatmulKernels) {
    this.forward = new LocalForward(model, kernels);
  }

  release(requests: readonly string[]): Promise<void> {
    for (const id of requests) {
      const s = this.seqOf.get(id);
      if (s !== undefined) { this.forward.free(s); this.seqOf.delete(id); }
    }
    return Promise.resolve();
  }

  execute(step: StepPlan): Promise<StepResult> {
    const t0 = performance.now();
    void this.release(step.freed);
    const chunks: SeqChunk[] = step.chunks.map((c) => {
      assert(c.tokens !== undefined, `step ${step.index}: chunk of ${c.request} carries no token ids`);
      return { seq: this.seq(c.request), start: c.start, tokens: c.tokens };
    });
    const sampled = samplingChunks(step.chunks);
    let tokens: Record<string, number> = {};
    if (chunks.length > 0) {
      const { batch, lastRows } = batchOf(chunks);
      const rows = Int32Array.from(step.chunks.flatMap((c, i) => (c.sample ? [lastRows[i]!] : [])));
      const logits = this.forward.step(batch, rows);
      tokens = sampleRows(logits, this.forward.spec.vocabSize, sampled);
    }
    const seconds = (performance.now() - t0) / 1000;
    return Promise.resolve({ sampled: tokens, seconds, parts: { compute: seconds } });
  }

  private seq(id: string): number {
    let s = this.seqOf.get(id);
    if (s === undefined) { s = this.nextSeq++; this.seqOf.set(id, s); }
    return s;
  }
}
