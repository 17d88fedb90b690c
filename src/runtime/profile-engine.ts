// Owns: the engine's side of the runtime probe: a real Engine and EngineLoop driving a local
// cluster's executor, every head on the primary: the decode steps and the engine's own time
// right after a prefill, and the engine's time between two steps by sequences in the step.
// Must not: start or stop the cluster (the runtime probe owns it).

import { Engine } from '../engine/engine.js';
import { EngineLoop } from '../engine/loop.js';
import type { StepRecord } from '../engine/types.js';
import type { EngineStepProfile } from '../cost/profile-types.js';
import type { ModelSpec } from '../model/spec.js';
import { blockFor } from '../util/block.js';
import { median, trimmedMean } from '../util/fit.js';
import type { ClusterExecutor } from './cluster-executor.js';
import { localEngineConfig } from './local-devices.js';

/** Decode steps after a prefill whose extra time is measured (the first ones after it are cold). */
export const AFTER_PREFILL_STEPS = 8;
/** Prompt of the after-prefill measurement, tokens (about a scaled conversation's). */
const AFTER_PREFILL_PROMPT = 64;
/** Sequences per step of the engine-gap measurement. */
const ENGINE_BATCHES: readonly number[] = [1, 4, 16];

let engineRequests = 0;

/**
 * Runs `requests` (`prompt`-token prompts, at most half the context) through a real Engine and
 * EngineLoop over `executor` at once, to the end, every head on the primary (where a lightly
 * loaded server keeps them); returns the engine's step records. A step that fails fails the
 * measurement.
 */
export async function runEngine(spec: ModelSpec, executor: ClusterExecutor, kvBytes: number, prompt: number, requests: { id: string; maxTokens: number }[]): Promise<StepRecord[]> {
  const engine = new Engine(localEngineConfig(spec, [{ id: 'primary', primary: true, kvCapacityBytes: kvBytes }], []), executor);
  let failed: { error: unknown } | undefined;
  const loop = new EngineLoop(engine, { onStepError: (error) => { failed = { error }; return false; } });
  const length = Math.min(prompt, Math.floor(spec.contextLength / 2));
  const ids = Array.from({ length }, (_, i) => 1 + (i * 13) % (spec.vocabSize - 1));
  loop.start();
  for (const r of requests) loop.submit({ id: r.id, arrival: loop.now(), promptTokens: ids, promptLength: length, maxTokens: Math.min(r.maxTokens, spec.contextLength - length - 1) });
  while (engine.hasWork() && failed === undefined) await new Promise((r) => setTimeout(r, 2));
  await loop.stop();
  if (failed !== undefined) throw failed.error;
  await engine.releaseFreed();
  return engine.steps;
}

/**
 * The decode steps right after a prefill, as the engine runs them: `repeats` times, after a
 * 10 ms idle, one request (an AFTER_PREFILL_PROMPT-token prompt, 32 tokens); the k-th decode
 * step's median less the median of its steps from the 16th on, for k < AFTER_PREFILL_STEPS
 * (>= 0): `steps`. The same for the engine's own time after each of them (the gap to the next
 * step's start: its code and data come back cold after a prefill too): `engine`.
 */
export async function measureAfterPrefill(spec: ModelSpec, executor: ClusterExecutor, kvBytes: number, repeats: number): Promise<{ steps: number[]; engine: number[] }> {
  const byStep = Array.from({ length: AFTER_PREFILL_STEPS }, () => [] as number[]);
  const gapByStep = Array.from({ length: AFTER_PREFILL_STEPS }, () => [] as number[]);
  const late: number[] = [], lateGaps: number[] = [];
  for (let r = 0; r < repeats; r++) {
    blockFor(10); // the engine idles 10 ms first
    const steps = await runEngine(spec, executor, kvBytes, AFTER_PREFILL_PROMPT, [{ id: `engine-probe-${engineRequests++}`, maxTokens: 32 }]);
    const decode = steps.map((s, i) => ({ s, next: steps[i + 1] })).filter((x) => x.s.prefillTokens === 0);
    decode.forEach(({ s, next }, k) => {
      const gap = next !== undefined ? next.start - (s.start + s.seconds) : undefined;
      if (k < AFTER_PREFILL_STEPS) {
        byStep[k]!.push(s.seconds);
        if (gap !== undefined) gapByStep[k]!.push(gap);
      } else if (k >= 16) {
        late.push(s.seconds);
        if (gap !== undefined) lateGaps.push(gap);
      }
    });
  }
  const extra = (xs: number[][], settled: number[]): number[] => xs.map((x) => (x.length > 0 && settled.length > 0 ? Math.max(0, median(x) - median(settled)) : 0));
  return { steps: extra(byStep, late), engine: extra(gapByStep, lateGaps) };
}

/**
 * The engine's own time between two steps as it serves: a real Engine and EngineLoop over the
 * cluster's executor run `batch` requests at a time (16-token prompts, `tokens` tokens each,
 * no EOS) for each of ENGINE_BATCHES; the gap between a decode step's end and the next step's
 * start (scheduling, placing heads, predicting the step, bookkeeping, the loop's turn of the
 * event loop) is fitted as fixed + perSequence x sequences over the medians. Also returns the
 * mean (trimmedMean) engine -> primary round trip of the one-sequence decode steps (their `transport` part)
 * and what each sequence adds to it (the slope over the batches).
 */
export async function measureEngineGaps(spec: ModelSpec, executor: ClusterExecutor, kvBytes: number, tokens: number): Promise<{ engineStep: EngineStepProfile; transport: number; stepPerSequence: number }> {
  const points: { sequences: number; gap: number }[] = [];
  const transports: { sequences: number; gap: number }[] = [];
  for (const batch of ENGINE_BATCHES) {
    const steps = await runEngine(spec, executor, kvBytes, 16, Array.from({ length: batch }, () => ({ id: `engine-probe-${engineRequests++}`, maxTokens: tokens })));
    const gaps: number[] = [];
    for (let i = 1; i < steps.length; i++) {
      const a = steps[i - 1]!, b = steps[i]!;
      if (a.prefillTokens === 0 && a.decodeTokens === batch) gaps.push(b.start - (a.start + a.seconds));
    }
    if (gaps.length > 0) points.push({ sequences: batch, gap: Math.max(0, median(gaps)) });
    const ts = steps.filter((x) => x.prefillTokens === 0 && x.decodeTokens === batch).map((x) => x.parts?.['transport'] ?? 0);
    if (ts.length > 0) transports.push({ sequences: batch, gap: trimmedMean(ts) });
  }
  const gap = fitLine(points), message = fitLine(transports);
  const one = transports.find((p) => p.sequences === 1)?.gap ?? NaN;
  return { engineStep: { fixed: gap.fixed, perSequence: gap.slope, points }, transport: one, stepPerSequence: message.slope };
}

/** Least squares line through the points, slope and intercept clamped at >= 0. */
function fitLine(points: readonly { sequences: number; gap: number }[]): { fixed: number; slope: number } {
  const n = points.length;
  if (n === 0) return { fixed: 0, slope: 0 };
  const mx = points.reduce((a, p) => a + p.sequences, 0) / n, my = points.reduce((a, p) => a + p.gap, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.sequences - mx) ** 2, 0);
  const slope = sxx > 0 ? Math.max(0, points.reduce((a, p) => a + (p.sequences - mx) * (p.gap - my), 0) / sxx) : 0;
  return { fixed: Math.max(0, my - slope * mx), slope };
}
