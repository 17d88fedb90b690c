// Owns: what one step of scheduled chunks asks of the cluster: the executor's chunks (their
// tokens and sampling), each request's head devices, and the StepShape the cost model prices.
// Must not: change a sequence or any of the engine's state.

import type { DispatchDevice } from '../dispatch/types.js';
import { samplingKind } from '../model/sampler.js';
import type { Scheduled } from './scheduler.js';
import type { StepShape } from './step-cost.js';
import type { StepChunk } from './types.js';

/** What the engine knows of a step beyond its chunks (per device arrays parallel to `devices`). */
export interface StepContext {
  /** Seconds since the previous step's issue interval ended. */
  idle: number;
  /** Steps since the last step with prefill tokens (undefined: none yet). */
  sincePrefill: number | undefined;
  /** The engine's busy share of the last second before the step (BusyWindow). */
  recentBusy: number;
  /** Migrations queued before the step: head-tokens and heads moved to each device. */
  migratedHeadTokens: number[];
  migratedHeads: number[];
  /** Requests whose KV the step frees first, per device. */
  freedRequests: number[];
}

export interface DescribedStep {
  chunks: StepChunk[];
  headDevices: Record<string, readonly string[]>;
  shape: StepShape;
}

/**
 * The step of `scheduled` (each running sequence's next `count` positions, their heads placed):
 * a chunk ending at the sequence's last token samples; a decoding sequence adds its heads and
 * head-tokens to their devices; a prefill chunk adds its tokens, and the head-tokens its heads
 * off the primaries will hold, to the shape. A chunk starting at position 0 is an admission.
 */
export function describeStep(scheduled: readonly Scheduled[], devices: readonly DispatchDevice[], ctx: StepContext): DescribedStep {
  const n = devices.length;
  const shape: StepShape = {
    prefill: [], decodeTokens: 0, sampledRows: 0,
    decodeHeads: new Array<number>(n).fill(0), decodeHeadTokens: new Array<number>(n).fill(0),
    shippedHeadTokens: new Array<number>(n).fill(0), migratedHeadTokens: ctx.migratedHeadTokens, migratedHeads: ctx.migratedHeads,
    freedRequests: ctx.freedRequests,
    idle: ctx.idle,
    recentBusy: ctx.recentBusy,
    admitted: scheduled.filter((c) => c.seq.computed === 0).length,
    ...(ctx.sincePrefill !== undefined ? { sincePrefill: ctx.sincePrefill } : {}),
  };
  const chunks: StepChunk[] = [];
  const headDevices: Record<string, readonly string[]> = {};
  for (const { seq, count } of scheduled) {
    const start = seq.computed;
    const sample = start + count === seq.numTokens;
    const tokens = seq.req.promptTokens !== undefined ? Array.from({ length: count }, (_, j) => seq.tokenAt(start + j)!) : undefined;
    const sampling = sample ? seq.req.sampling : undefined;
    chunks.push({ request: seq.id, start, count, sample, ...(tokens ? { tokens } : {}), ...(sampling ? { sampling } : {}) });
    headDevices[seq.id] = seq.deviceIds!;
    if (sample) {
      shape.sampledRows++;
      const kind = samplingKind(sampling);
      if (kind !== 'greedy') (shape.sampledBy ??= { plain: 0, truncated: 0 })[kind]++;
    }
    if (seq.decoding) {
      shape.decodeTokens++;
      seq.counts!.forEach((c, i) => { shape.decodeHeads[i]! += c; shape.decodeHeadTokens[i]! += c * seq.numTokens; });
    } else {
      shape.prefill.push({ tokens: count, context: start });
      seq.counts!.forEach((c, i) => { if (!devices[i]!.primary) shape.shippedHeadTokens[i]! += c * count; });
    }
  }
  return { chunks, headDevices, shape };
}
