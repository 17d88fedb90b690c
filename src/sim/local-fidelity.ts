// Owns: comparing a real run of the local cluster with the simulator's replay of it: the replay
// requests (the real run's arrivals, prompt lengths, max_tokens and generated lengths), the
// replay on the virtual clock with the EngineConfig the server used, the request-level metrics
// side by side with their errors, and the per-step prediction error of the real steps by kind.
// Must not: run the real cluster, read the clock or do I/O.

import type { EngineConfig } from '../engine/engine.js';
import type { EngineRequest, RequestRecord, StepRecord } from '../engine/types.js';
import { stepCost } from '../engine/step-cost.js';
import { assert } from '../util/errors.js';
import { median } from '../util/fit.js';
import { createRng } from '../util/rng.js';
import { arrivalTimes } from './arrivals.js';
import { fitToContext } from './evaluation.js';
import { SIM_EOS, SIM_TOKEN } from './executor.js';
import { percentile, runMetrics, type RunMetrics, type Slo } from './metrics.js';
import { runEngines, type RunResult } from './simulate.js';
import type { Workload } from './workload.js';

/** One request of a fidelity workload: when it is sent, its prompt length and its max_tokens. */
export interface LoadRequest {
  /** Seconds from the start of the run. */
  arrival: number;
  promptLength: number;
  maxTokens: number;
  /** How its tokens are drawn (absent: greedy). */
  sampling?: LoadSampling;
}

/** A request's temperature and top-p, as the OpenAI API takes them (top-k is not part of it). */
export interface LoadSampling {
  temperature: number;
  topP: number;
}

/**
 * A trace workload (already rescaled to its rate) shrunk to a small model: prompt and output
 * lengths scaled by `scale` (at least 1 token each), then fitted to `context` as evaluation
 * harnesses do (fitToContext); the output length becomes max_tokens.
 */
export function scaledTrace(w: Workload, scale: number, context: number): LoadRequest[] {
  const scaled = w.requests.map((r) => ({
    arrival: r.arrival,
    promptLength: Math.max(1, Math.round(r.promptLength * scale)),
    outputLength: Math.max(1, Math.round((r.outputLength ?? r.maxTokens) * scale)),
  }));
  return fitToContext(scaled, context).map((r) => ({ arrival: r.arrival, promptLength: r.promptLength, maxTokens: r.outputLength }));
}

/**
 * Poisson arrivals at `rate` with prompt and output lengths uniform in [lo, hi] each (inclusive),
 * fitted to `context`. Same seed, same requests; the same seed at another rate stretches the
 * same arrival pattern.
 */
export function poissonWorkload(o: { seed: number; rate: number; count: number; prompt: [number, number]; output: [number, number]; context: number }): LoadRequest[] {
  const arrivals = arrivalTimes(createRng(o.seed), { process: 'poisson', rate: o.rate, count: o.count });
  const rng = createRng(o.seed + 1);
  const uniform = ([lo, hi]: [number, number]): number => lo + Math.floor(rng.next() * (hi - lo + 1));
  const reqs = arrivals.map((arrival) => ({ arrival, promptLength: uniform(o.prompt), outputLength: uniform(o.output) }));
  return fitToContext(reqs, o.context).map((r) => ({ arrival: r.arrival, promptLength: r.promptLength, maxTokens: r.outputLength }));
}

/** What a real run leaves: the engine's records of its requests and steps, and what each request asked for. */
export interface RealRun {
  records: RequestRecord[];
  steps: StepRecord[];
  /** max_tokens the engine was given, by request id. */
  maxTokens: ReadonlyMap<string, number>;
  /** The requests sent with a temperature, by id (absent or not listed: greedy). */
  sampling?: ReadonlyMap<string, LoadSampling>;
}

/** A RealRun as JSON can hold it (its maps as entry lists): what a fidelity study saves of each run. */
export interface SavedRealRun {
  records: RequestRecord[];
  steps: StepRecord[];
  maxTokens: [string, number][];
  sampling?: [string, LoadSampling][];
}

/**
 * A first step's idle is Infinity, which JSON cannot hold: it is saved as the largest finite
 * number, which the cost model treats alike (the wake-up after the longest idle it measured).
 */
export function saveRealRun(run: RealRun): SavedRealRun {
  const steps = run.steps.map((st) => (st.shape?.idle === Infinity ? { ...st, shape: { ...st.shape, idle: Number.MAX_VALUE } } : st));
  return { records: run.records, steps, maxTokens: [...run.maxTokens], ...(run.sampling !== undefined ? { sampling: [...run.sampling] } : {}) };
}

export function loadRealRun(s: SavedRealRun): RealRun {
  return { records: s.records, steps: s.steps, maxTokens: new Map(s.maxTokens), ...(s.sampling !== undefined ? { sampling: new Map(s.sampling) } : {}) };
}

/**
 * The real run as a trace for the simulator: every request that reached the engine, at its
 * arrival (the first at 0), with its prompt length and max_tokens, generating exactly the tokens
 * it generated for real. A request that stopped at EOS gets EOS from the simulated sampler after
 * the same number of tokens; one that hit max_tokens or the context stops there in both. A
 * request sent with a temperature is drawn the same way in the simulator (its tokens stay the
 * simulated ones; what drawing them costs is the cost model's).
 */
export function replayRequests(run: RealRun): EngineRequest[] {
  const served = run.records.filter((r) => r.finishReason === 'stop' || r.finishReason === 'length');
  const t0 = Math.min(...served.map((r) => r.arrival));
  return served
    .map((r) => {
      const maxTokens = run.maxTokens.get(r.id);
      assert(maxTokens !== undefined, `no max_tokens recorded for ${r.id}`);
      const s = run.sampling?.get(r.id);
      const sampling = s !== undefined && s.temperature > 0 ? { sampling: { temperature: s.temperature, topK: 0, topP: s.topP, seed: 0 } } : {};
      return { id: r.id, arrival: r.arrival - t0, promptLength: r.promptLength, maxTokens, outputLength: r.outputLength, ...sampling };
    })
    .sort((a, b) => a.arrival - b.arrival || (a.id < b.id ? -1 : 1));
}

/**
 * Runs the replay on the virtual clock with the server's engine configuration (same devices,
 * capacities, tuning and cost model); only the EOS ids become the simulated sampler's.
 */
export function simulateReplay(config: EngineConfig, requests: readonly EngineRequest[]): Promise<RunResult> {
  assert(!config.eosIds.includes(SIM_TOKEN), 'the simulated token must not be an EOS id');
  return runEngines([{ ...config, eosIds: [SIM_EOS] }], requests);
}

/**
 * Where each of `passes` profile passes of a fidelity study runs among its `layouts` layouts:
 * slot i < layouts is before layout i, slot `layouts` after the last. The first pass comes before
 * any run (the first server needs a profile), the rest spread evenly up to after the last layout,
 * so their median describes the machine over the minutes the runs took.
 */
export function profilePassSlots(passes: number, layouts: number): number[] {
  assert(Number.isInteger(passes) && passes >= 1 && Number.isInteger(layouts) && layouts >= 1, `profile passes and layouts must be whole numbers of at least 1 (got ${passes}, ${layouts})`);
  if (passes === 1) return [0];
  return Array.from({ length: passes }, (_, k) => Math.round((k * layouts) / (passes - 1)));
}

/**
 * The real steps with their predictions made again by `config`'s cost model from each step's
 * recorded shape (steps recorded without one keep the prediction the server made): a study
 * replaying with a profile other than the server's compares its steps with the same profile.
 */
export function repredictSteps(config: Pick<EngineConfig, 'cost' | 'stages' | 'devices'>, steps: readonly StepRecord[]): StepRecord[] {
  return steps.map((st) => {
    if (st.shape === undefined) return st;
    const p = stepCost(config.cost, config.stages, config.devices, st.shape);
    return { ...st, predictedSeconds: p.seconds, predictedInterval: p.interval, ...(st.predictedParts !== undefined ? { predictedParts: p.parts } : {}) };
  });
}

/** A step's kind for the error table: any migration makes it 'migration'. */
export type StepKind = 'prefill' | 'decode' | 'mixed' | 'migration';
export const STEP_KINDS: readonly StepKind[] = ['prefill', 'decode', 'mixed', 'migration'];

export function stepKind(s: StepRecord): StepKind {
  if (s.migrations > 0) return 'migration';
  if (s.prefillTokens > 0) return s.decodeTokens > 0 ? 'mixed' : 'prefill';
  return 'decode';
}

/** Relative error of a prediction: predicted / measured - 1 (positive: the model is slow). */
export function relativeError(predicted: number, measured: number): number {
  return measured > 0 ? predicted / measured - 1 : NaN;
}

/** Distribution of the per-step relative error (predicted / measured - 1) of one kind of step. */
export interface StepErrors {
  kind: StepKind | 'all';
  steps: number;
  /** Measured and predicted median step time, seconds. */
  measuredP50: number;
  predictedP50: number;
  /** Percentiles of the signed error. */
  p10: number;
  p50: number;
  p90: number;
  /** Median of |error|. */
  absP50: number;
}

function errorsOf(kind: StepErrors['kind'], steps: readonly StepRecord[]): StepErrors {
  const sorted = (xs: number[]): number[] => xs.sort((a, b) => a - b);
  const errs = sorted(steps.map((s) => relativeError(s.predictedSeconds, s.seconds)));
  return {
    kind, steps: steps.length,
    measuredP50: percentile(sorted(steps.map((s) => s.seconds)), 0.5),
    predictedP50: percentile(sorted(steps.map((s) => s.predictedSeconds)), 0.5),
    p10: percentile(errs, 0.1), p50: percentile(errs, 0.5), p90: percentile(errs, 0.9),
    absP50: percentile(sorted(errs.map(Math.abs)), 0.5),
  };
}

/** Per-step error of real steps by kind (kinds with no step are left out), then all steps. */
export function stepErrors(steps: readonly StepRecord[]): StepErrors[] {
  const out: StepErrors[] = [];
  for (const kind of STEP_KINDS) {
    const mine = steps.filter((s) => stepKind(s) === kind);
    if (mine.length > 0) out.push(errorsOf(kind, mine));
  }
  out.push(errorsOf('all', steps));
  return out;
}

/** One request-level figure, real against simulated. */
export interface Figure {
  name: string;
  /** 'tok/s', 's' or 'ms' (values are stored in the unit). */
  unit: 'tok/s' | 's' | 'ms';
  real: number;
  sim: number;
  /** sim / real - 1. */
  error: number;
}

/** The figures the fidelity table reports, from two runs' metrics and steps. */
export function figures(real: RunMetrics, sim: RunMetrics, realSteps: readonly StepRecord[], simSteps: readonly StepRecord[]): Figure[] {
  const median = (steps: readonly StepRecord[]): number => percentile(steps.map((s) => s.seconds).sort((a, b) => a - b), 0.5);
  const mean = (steps: readonly StepRecord[]): number => steps.reduce((a, s) => a + s.seconds, 0) / Math.max(1, steps.length);
  const fig = (name: string, unit: Figure['unit'], r: number, s: number): Figure => ({ name, unit, real: r, sim: s, error: relativeError(s, r) });
  return [
    fig('throughput', 'tok/s', real.throughputTokS, sim.throughputTokS),
    fig('TTFT P50', 's', real.ttft.p50, sim.ttft.p50),
    fig('TTFT P95', 's', real.ttft.p95, sim.ttft.p95),
    fig('TPOT P50', 'ms', real.tpot.p50 * 1e3, sim.tpot.p50 * 1e3),
    fig('TPOT P95', 'ms', real.tpot.p95 * 1e3, sim.tpot.p95 * 1e3),
    fig('step P50', 'ms', median(realSteps) * 1e3, median(simSteps) * 1e3),
    fig('step mean', 'ms', mean(realSteps) * 1e3, mean(simSteps) * 1e3),
  ];
}

/** A real run and its replay, compared. */
export interface Comparison {
  requests: number;
  real: RunMetrics;
  sim: RunMetrics;
  figures: Figure[];
  steps: StepErrors[];
  /** Requests whose generated length differs between the two runs (must be none). */
  mismatched: string[];
  /** Whether the real run fell behind its arrivals (see saturatedRun) or its engine was busy BUSY_SATURATED of the time. */
  saturated: boolean;
  /** Share of the real run's makespan its engine spent in steps. */
  busy: number;
}

/** An engine busy this share of the time is at the knee of its queue: every error of a model moves the latencies there. */
export const BUSY_SATURATED = 0.85;

/** Completed requests per second below this share of the offered rate count as saturated. */
export const SATURATED_SHARE = 0.9;

/**
 * A run is saturated when it served requests more slowly than SATURATED_SHARE of the rate they
 * arrived at: n requests over (last finish - first arrival) against n - 1 gaps over the arrival
 * span. Measured on the run's own arrivals (a trace rescaled to a mean rate can be burstier or
 * sparser than that mean in its first requests). The drain of the last requests counts against
 * the run, so short runs read as saturated sooner.
 */
export function saturatedRun(records: readonly RequestRecord[]): boolean {
  if (records.length < 2) return false;
  const first = Math.min(...records.map((r) => r.arrival));
  const span = Math.max(...records.map((r) => r.arrival)) - first;
  const makespan = Math.max(...records.map((r) => r.finishedAt)) - first;
  if (!(span > 0)) return false;
  return records.length / makespan < SATURATED_SHARE * ((records.length - 1) / span);
}

/** Replays `run` on `config` and compares. */
export async function compareReplay(config: EngineConfig, run: RealRun, slo: Slo): Promise<Comparison & { replay: RunResult }> {
  const requests = replayRequests(run);
  const replay = await simulateReplay(config, requests);
  const ids = new Set(requests.map((q) => q.id));
  const realRecords = run.records.filter((r) => ids.has(r.id));
  const real = runMetrics(realRecords, run.steps, slo);
  const sim = runMetrics(replay.records, replay.steps, slo);
  const simOut = new Map(replay.records.map((r) => [r.id, r]));
  const busy = run.steps.reduce((a, st) => a + st.seconds, 0) / Math.max(real.makespan, 1e-9);
  const mismatched = realRecords.filter((r) => simOut.get(r.id)?.outputLength !== r.outputLength || simOut.get(r.id)?.finishReason !== r.finishReason).map((r) => r.id);
  return {
    requests: requests.length, real, sim, figures: figures(real, sim, run.steps, replay.steps), steps: stepErrors(run.steps), mismatched,
    saturated: saturatedRun(realRecords) || busy >= BUSY_SATURATED, busy, replay,
  };
}

/** A figure over repeated runs of one workload: medians of each side, and how far the real runs spread. */
export interface RepeatedFigure extends Figure {
  /** Largest |real run / median of the real runs - 1|: what the machine alone moves the figure by. */
  spread: number;
}

/** Repeated runs of one workload (each replayed on its own), compared by their medians. */
export interface RepeatedComparison {
  repeats: number;
  /** Requests per run. */
  requests: number;
  figures: RepeatedFigure[];
  /** Per-step errors of every real step of the runs together. */
  steps: StepErrors[];
  mismatched: string[];
  /** More than half of the runs were saturated. */
  saturated: boolean;
  /** Median share of a run's makespan its engine spent in steps. */
  busy: number;
}

/**
 * Repeats of one workload against their replays: each figure's real value is the median over
 * the real runs and its simulated value the median over their replays (each replay follows its
 * own run's arrivals), error = sim / real - 1; `spread` says how far single real runs strayed
 * from their median. `steps[i]` are run i's real steps.
 */
export function combineRepeats(runs: readonly Comparison[], steps: readonly (readonly StepRecord[])[]): RepeatedComparison {
  assert(runs.length > 0, 'combineRepeats needs at least one run');
  const figures = runs[0]!.figures.map((f): RepeatedFigure => {
    const reals = runs.map((r) => r.figures.find((g) => g.name === f.name)?.real ?? NaN);
    const real = median(reals), sim = median(runs.map((r) => r.figures.find((g) => g.name === f.name)?.sim ?? NaN));
    return { name: f.name, unit: f.unit, real, sim, error: relativeError(sim, real), spread: Math.max(...reals.map((x) => Math.abs(relativeError(x, real)))) };
  });
  return {
    repeats: runs.length, requests: runs[0]!.requests, figures, steps: stepErrors(steps.flat()),
    mismatched: runs.flatMap((r) => r.mismatched), saturated: runs.filter((r) => r.saturated).length * 2 > runs.length,
    busy: median(runs.map((r) => r.busy)),
  };
}

/** The targets over runs below saturation: the largest |error| of each figure. */
export interface TargetCheck {
  /** Runs below saturation. */
  runs: number;
  tpot: number;
  throughput: number;
  ttft: number;
  /** Largest median |per-step error| of a run (all its steps). */
  stepMedian: number;
  /** Median |per-step error| of every step of those runs together. */
  stepMedianPooled: number;
  /** Largest spread of the real TPOT P50/P95 and TTFT P50/P95 between repeats (RepeatedFigure.spread; NaN without). */
  tpotSpread: number;
  ttftSpread: number;
}

export function targetCheck(runs: readonly Pick<Comparison, 'saturated' | 'figures' | 'steps'>[], steps: readonly (readonly StepRecord[])[] = []): TargetCheck {
  const ok = runs.filter((r) => !r.saturated);
  const pooled = runs.flatMap((r, i) => (r.saturated ? [] : [...(steps[i] ?? [])])).map((st) => Math.abs(relativeError(st.predictedSeconds, st.seconds))).sort((a, b) => a - b);
  const worst = (names: readonly string[]): number => Math.max(0, ...ok.flatMap((r) => r.figures.filter((f) => names.includes(f.name)).map((f) => Math.abs(f.error))));
  const spread = (names: readonly string[]): number => {
    const xs = ok.flatMap((r) => r.figures.filter((f) => names.includes(f.name) && 'spread' in f).map((f) => (f as RepeatedFigure).spread));
    return xs.length > 0 ? Math.max(...xs) : NaN;
  };
  return {
    runs: ok.length,
    tpot: worst(['TPOT P50', 'TPOT P95']),
    throughput: worst(['throughput']),
    ttft: worst(['TTFT P50', 'TTFT P95']),
    stepMedian: Math.max(0, ...ok.map((r) => r.steps.find((s) => s.kind === 'all')?.absP50 ?? 0)),
    stepMedianPooled: pooled.length > 0 ? percentile(pooled, 0.5) : NaN,
    tpotSpread: spread(['TPOT P50', 'TPOT P95']),
    ttftSpread: spread(['TTFT P50', 'TTFT P95']),
  };
}
