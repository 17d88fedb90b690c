// Owns: `profileLocal`, measuring this machine's CPU device the way workers run: the kernels
// getKernels picks on `threads` threads, the real DenseRunner ops and attendHeads for one model
// shape, and message time between two worker processes; the result is a ProfileFile the
// profiled cost model reads. Must not: write files or print (callers get onProgress).

import { cpus, hostname, totalmem } from 'node:os';
import type { DecodeAttentionProfile, DeviceProfile, LinkProfile, OpTable, PrefillAttentionProfile, ProfileFile } from '../cost/profile-types.js';
import { createProfiledCostModel, modelShape } from '../cost/profiled.js';
import { createRooflineCostModel } from '../cost/roofline.js';
import { FP32 } from '../cost/types.js';
import type { DeviceSpec } from '../hardware/types.js';
import { randomWeights } from '../model/random.js';
import { validateSpec, type ModelSpec } from '../model/spec.js';
import type { LoadedModel } from '../model/weights.js';
import { HetisError } from '../util/errors.js';
import { median, nonNegativeLeastSquares } from '../util/fit.js';
import { DenseRunner } from './dense.js';
import { getKernels, type KernelPreference, type MatmulKernels } from './kernel-select.js';
import {
  denseSweep, makeClock, PROFILED_OPS, sample, sweepSeconds, timeDecodeAttention, timePrefillAttention, weightSweep,
  type Clock, type DecodeGrid, type ProfiledOp, type Sampling,
} from './profile-ops.js';
import { measureRuntimeRoundTrips } from './profile-runtime.js';
import { measureTransport, TRANSPORT_SIZES } from './profile-transport.js';
import { nextTurn } from '../util/turn.js';

/** The shape profiled when no model is given: stories15M (llama2.c) with an untied LM head. */
export const DEFAULT_PROFILE_SPEC: ModelSpec = {
  name: 'stories15M-shape', nLayers: 6, nHeads: 6, nKvHeads: 6, headDim: 48, dim: 288, ffnDim: 768,
  vocabSize: 32000, contextLength: 512, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};

export interface ProfileOptions {
  /** A loaded model, or a spec run with seeded random weights (default DEFAULT_PROFILE_SPEC). */
  model?: LoadedModel | ModelSpec;
  /** Threads of the matrix kernels (default 1, as a worker runs). */
  threads?: number;
  /**
   * What times are read from (see Clock): 'cpu' (this process's CPU time; the default with one
   * thread: on a busy machine it is what a dedicated core would see) or 'wall' (the default with
   * more threads, where CPU time would add the threads up).
   */
  clock?: 'cpu' | 'wall';
  /** Matrix kernels (default 'auto': what getKernels picks). */
  kernels?: KernelPreference;
  /** A reduced grid and fewer repeats (seconds, for tests and smoke runs). */
  quick?: boolean;
  /**
   * Token counts of the dense tables (default: every count from 1 to 256, then 320 .. 512 by 64;
   * quick: 1, 4, 16, 64). Every count, because the BLAS matrix products are a sawtooth in the
   * row count (OpenBLAS here: a count of 4k + 3 rows takes up to 1.7x the time of 4k + 4, and 2 rows
   * about what 4 take), which no interpolation between powers of two recovers.
   */
  tokens?: readonly number[];
  /**
   * Timed repeats per point after a warm-up, at least (default 7; quick 3): cheap points repeat
   * up to 40 times or 0.3 s of measured time (not in quick mode). The median is kept.
   */
  repeats?: number;
  /** Idle pause before each timed dense sweep and attention repeat, ms (default DEFAULT_PAUSE_MS; see Sampling.pauseMs). */
  pauseMs?: number;
  /** Measure the transport between two worker processes (default true). */
  transport?: boolean;
  /**
   * The model's file: with it (and the transport measured), the link's latency is taken from
   * round trips inside real steps of a local cluster running it (profile-runtime.ts), which cost
   * more than an isolated ping.
   */
  modelPath?: string;
  /** DeviceSpec.name of this CPU (default 'cpu-<hostname>'). */
  deviceName?: string;
  /** Called after each measured point with the points done so far, the total, and what ran. */
  onProgress?: (done: number, total: number, label: string) => void;
  /** Called with the pid of each worker process the transport measurement starts. */
  onSpawn?: (pid: number) => void;
}

/** Everything a run measures, sized by quick or full mode. */
interface Plan {
  tokens: number[];
  /** Sampling of the dense tables (many points, each cheap). */
  denseSampling: Sampling;
  /** Passes over the token counts up to SMALL_DENSE_TOKENS, each sampled as denseSampling says (their samples pooled). */
  densePasses: number;
  decode: DecodeGrid;
  prefill: number[];
  transportSizes: number[];
  transportRepeats: number;
  /** Sampling of every table point (warm-up, min/max repeats, measured seconds per point). */
  sampling: Sampling;
  /** Idle pause before each timed dense sweep, ms. */
  pauseMs: number;
  /** Side of the square matrix product that measures peak FLOP/s. */
  peakSide: number;
  /** Bytes of the matrix read to measure memory bandwidth (must exceed the last-level cache). */
  bandwidthBytes: number;
}

function makePlan(spec: ModelSpec, o: ProfileOptions): Plan {
  const quick = o.quick === true;
  const tokens = [...new Set(o.tokens ?? (quick ? [1, 4, 16, 64] : FULL_DENSE_TOKENS))].sort((a, b) => a - b);
  if (tokens.length === 0 || tokens.some((t) => !Number.isInteger(t) || t < 1)) {
    throw new HetisError('bad_input', `profile token counts must be positive integers, got ${JSON.stringify(o.tokens)}`);
  }
  const ctx = spec.contextLength;
  const repeats = o.repeats ?? (quick ? 3 : 7);
  if (!Number.isInteger(repeats) || repeats < 1) throw new HetisError('bad_input', `profile repeats must be a positive integer, got ${repeats}`);
  const contexts = (quick ? [8, 32] : [16, 64, 256, 512]).map((c) => Math.min(c, ctx));
  const headsPerRequest = [...new Set([1, spec.nKvHeads])];
  return {
    tokens,
    decode: { headsPerRequest, requests: quick ? [1, 4] : [1, 4, 16, 32], contexts: [...new Set(contexts)] },
    prefill: (quick || o.tokens !== undefined ? tokens : FULL_PREFILL_TOKENS).filter((t) => t <= ctx),
    transportSizes: quick ? [64, 16384, 1048576] : [...TRANSPORT_SIZES],
    transportRepeats: quick ? 5 : 100,
    sampling: { warmup: 1, min: repeats, max: quick ? repeats : Math.max(repeats, 40), seconds: quick ? 0 : 0.3, pauseMs: o.pauseMs ?? DEFAULT_PAUSE_MS },
    denseSampling: quick || o.repeats !== undefined || o.tokens !== undefined
      ? { warmup: 1, min: repeats, max: quick ? repeats : Math.max(repeats, 40), seconds: quick ? 0 : 0.3 }
      : { warmup: 1, min: 5, max: 15, seconds: 0.05 },
    densePasses: quick || o.repeats !== undefined ? 1 : SMALL_DENSE_PASSES,
    pauseMs: o.pauseMs ?? DEFAULT_PAUSE_MS,
    peakSide: quick ? 256 : 1024,
    bandwidthBytes: quick ? 64 << 20 : 256 << 20,
  };
}

/** Idle pause before each timed repeat, ms: about what a worker idles between two steps (or two layers' attention calls) while serving. */
export const DEFAULT_PAUSE_MS = 0.2;

/** The full profile's dense token counts: every count to 256 (see ProfileOptions.tokens), then by 64 to 512. */
const FULL_DENSE_TOKENS: readonly number[] = [...Array.from({ length: 256 }, (_, i) => i + 1), 320, 384, 448, 512];
/** The full profile's prefill attention chunk lengths (a smooth curve: no need for every count). */
const FULL_PREFILL_TOKENS: readonly number[] = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];

/** Measures this machine's CPU device for one model shape; see ProfileOptions. */
export async function profileLocal(o: ProfileOptions = {}): Promise<ProfileFile> {
  const threads = o.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new HetisError('bad_input', `threads must be a positive integer, got ${threads}`);
  const clockKind = o.clock ?? (threads === 1 ? 'cpu' : 'wall');
  if (clockKind === 'cpu' && threads > 1) throw new HetisError('bad_input', `the cpu clock adds up threads; use the wall clock with ${threads} threads`);
  const clock = makeClock(clockKind);
  const model = o.model === undefined ? randomWeights(DEFAULT_PROFILE_SPEC) : 'weights' in o.model ? o.model : randomWeights(validateSpec(o.model, 'profile model'));
  const spec = model.spec;
  const kernels = getKernels(o.kernels ?? 'auto');
  kernels.setThreads(threads);
  const runner = new DenseRunner(model, kernels);
  const plan = makePlan(spec, o);
  const transport = o.transport !== false;
  const decodePoints = plan.decode.headsPerRequest.length * plan.decode.requests.length * plan.decode.contexts.length;
  const total = 3 + plan.tokens.length + decodePoints + plan.prefill.length + (transport ? plan.transportSizes.length + (o.modelPath !== undefined ? 1 : 0) : 0);
  let done = 0;
  const progress = (label: string): void => { done++; o.onProgress?.(done, total, label); };

  await warmUp(clock, runner, plan);
  const dense = await measureDense(clock, runner, plan, progress);

  const points = timeDecodeAttention(clock, spec, runner, plan.decode, plan.sampling, (p) => {
    progress(`decode attention, ${p.heads} heads x ${p.headTokens / p.heads} tokens`);
  });
  await nextTurn();
  const decodeAttention = fitDecodeAttention(points);

  const prefillSeconds: number[] = [];
  const warmPrefill = plan.prefill[Math.floor(plan.prefill.length / 2)];
  if (warmPrefill !== undefined) timePrefillAttention(clock, spec, runner, warmPrefill, { warmup: 10, min: 1, max: 1, seconds: 0 }); // JIT
  for (const t of plan.prefill) {
    prefillSeconds.push(positive(timePrefillAttention(clock, spec, runner, t, { ...plan.sampling, warmup: plan.sampling.warmup + 2 })));
    progress(`prefill attention, ${t} tokens`);
    await nextTurn();
  }

  const device = measureDevice(clock, kernels, plan, o.deviceName ?? defaultDeviceName(), progress);
  const links = transport
    ? [await measureTransport({
      sizes: plan.transportSizes, repeats: plan.transportRepeats, warmup: 3,
      ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
      onSize: (b) => progress(`transport, ${b} bytes`),
    })]
    : [];
  let runtime: RuntimeMeasurements | undefined;
  if (links[0] !== undefined && o.modelPath !== undefined) {
    const prefillAttention = plan.prefill.length > 0 ? { tokens: plan.prefill, seconds: prefillSeconds } : undefined;
    const rt = await measureRuntime({
      spec, modelPath: o.modelPath, device, dense, decodeAttention, ...(prefillAttention !== undefined ? { prefillAttention } : {}),
      runner, clock, pauseMs: plan.pauseMs, quick: o.quick === true, ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
    });
    links[0] = withRuntimeLatency(links[0], rt.step, rt.attend);
    runtime = rt.measured;
    progress('round trips inside steps');
  }

  const profile: DeviceProfile = {
    device: device.name,
    model: modelShape(spec),
    precision: FP32,
    dense,
    decodeAttention,
    ...(plan.prefill.length > 0 ? { prefillAttention: { tokens: plan.prefill, seconds: prefillSeconds } } : {}),
    ...(runtime ?? {}),
  };
  const cpu = cpus();
  const native = kernels as Partial<{ config: string }>;
  return {
    format: 'hetis-profile',
    version: 1,
    createdAt: new Date().toISOString(),
    machine: {
      cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryBytes: totalmem(), node: process.version,
      kernels: `${kernels.name}${native.config !== undefined ? ` (${native.config})` : ''}, ${threads} thread${threads === 1 ? '' : 's'}`,
      clock: clock.kind,
    },
    devices: [device],
    profiles: [profile],
    links,
  };
}

/** What real steps of a local cluster add to a device's profile. */
type RuntimeMeasurements = Pick<DeviceProfile, 'stepOverhead' | 'denseInStep' | 'coldSteps' | 'engineStep' | 'messagePerSequence' | 'attentionInStep' | 'prefillAttentionInStep' | 'migration' | 'sampling'>;

/**
 * Real steps of a local cluster running the model file, against `dense` and `decodeAttention`
 * (this device's tables) and against the same dense work timed again in this process beside
 * them (`runner`, `clock`, `pauseMs`: as the tables were measured): the round trips inside steps
 * (for the link) and the measurements the device profile carries.
 */
async function measureRuntime(o: {
  spec: ModelSpec; modelPath: string; device: DeviceSpec; dense: OpTable[]; decodeAttention: DecodeAttentionProfile; prefillAttention?: PrefillAttentionProfile;
  runner: DenseRunner; clock: Clock; pauseMs: number; quick: boolean; onSpawn?: (pid: number) => void;
}): Promise<{ step: number; attend: number; measured: RuntimeMeasurements }> {
  const { spec, device, runner, clock } = o;
  const da = o.decodeAttention;
  const attention = (headTokens: number, heads: number): number => da.fixed + da.perHead * heads + da.perHeadToken * headTokens;
  const tables = createProfiledCostModel(createRooflineCostModel(spec, FP32), [{
    device: device.name, model: modelShape(spec), precision: FP32, dense: o.dense, ...(o.prefillAttention !== undefined ? { prefillAttention: o.prefillAttention } : {}),
  }]);
  const layerOps = (t: Record<ProfiledOp, number>): number => sweepSeconds(t, spec.nLayers, false);
  const rt = await measureRuntimeRoundTrips({
    spec, modelPath: o.modelPath, steps: o.quick ? 30 : 150, attention, quick: o.quick,
    ...(o.prefillAttention !== undefined ? { prefillAttention: (tokens: number) => tables.prefillAttention(device, [{ tokens, context: 0 }], spec.nKvHeads).seconds } : {}),
    dense: (tokens, logitRows) => spec.nLayers * tables.denseLayer(device, tokens, 1).seconds + tables.lmHead(device, logitRows, 1).seconds,
    isolatedDense: (tokens, logitRows) => {
      const samples = sample({ warmup: 1, min: 3, max: 20, seconds: 0.02, pauseMs: o.pauseMs }, denseSweep(clock, runner, tokens), layerOps);
      return median(samples.map(layerOps)) + tables.lmHead(device, logitRows, 1).seconds;
    },
    ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
  });
  return {
    step: rt.step, attend: rt.attend,
    measured: {
      stepOverhead: rt.stepOverhead, denseInStep: rt.denseInStep, coldSteps: rt.cold, engineStep: rt.engineStep, messagePerSequence: rt.messagePerSequence,
      attentionInStep: rt.attentionInStep, ...(rt.prefillAttentionInStep !== undefined ? { prefillAttentionInStep: rt.prefillAttentionInStep } : {}), migration: rt.migration, sampling: rt.sampling,
    },
  };
}

/**
 * Token counts up to which the dense tables are sampled in several passes. Work this small is
 * not compute-bound, and on the shared development VM its speed jitters: the median of
 * one-token sweeps over a quarter of a second moves by ±15% from one quarter second to the next
 * (64-token sweeps by ±5%), so one short window per point left each point of the table off by as
 * much, at the token counts decode steps run.
 */
const SMALL_DENSE_TOKENS = 32;
/** Passes over the small token counts (a second or so each), their samples pooled. */
const SMALL_DENSE_PASSES = 8;

/**
 * Tables of every dense op and the LM head over the token grid: first `plan.densePasses` passes
 * over the counts up to SMALL_DENSE_TOKENS (samples from windows spread over several seconds,
 * pooled), then the larger counts once; sizes go in ascending order within a pass, each with
 * its own warm-up sweeps: these also absorb the garbage-collection debt the previous size left
 * (its logits arrays), which would otherwise be charged to this size (interleaving small sizes
 * with large ones did exactly that: a 1-row LM head read 1.4-7.6 ms after 512-row sweeps, 1.1-1.5
 * ms after its own). The median per point is kept.
 */
async function measureDense(clock: Clock, runner: DenseRunner, plan: Plan, progress: (label: string) => void): Promise<OpTable[]> {
  const layers = runner.spec.nLayers;
  const samples = new Map<number, Record<ProfiledOp, number>[]>(plan.tokens.map((n) => [n, []]));
  const small = plan.tokens.filter((n) => n <= SMALL_DENSE_TOKENS);
  const passes = small.length > 0 ? Math.max(1, plan.densePasses) : 1;
  for (let pass = 0; pass < passes; pass++) {
    for (const n of pass === passes - 1 ? plan.tokens : small) {
      const sweep = denseSweep(clock, runner, n);
      samples.get(n)!.push(...sample({ ...plan.denseSampling, warmup: DENSE_WARMUP, pauseMs: plan.pauseMs }, sweep, (t) => sweepSeconds(t, layers)));
      if (pass === passes - 1) progress(`dense ops, ${n} tokens`);
      await nextTurn();
    }
  }
  return PROFILED_OPS.map((op) => ({ op, tp: 1, tokens: [...plan.tokens], seconds: plan.tokens.map((n) => positive(median(samples.get(n)!.map((t) => t[op])))) }));
}

/**
 * Runs the dense sweeps untimed until V8 has compiled them: at a few token counts, then until
 * a sweep at one token costs no more CPU than wall time. Until then V8's compiler threads run
 * beside the sweeps, and the CPU clock (which counts every thread) charged them to the first
 * points measured: small token counts read up to 2x high in a fresh process.
 */
async function warmUp(clock: Clock, runner: DenseRunner, plan: Plan): Promise<void> {
  const jit = weightSweep(runner);
  for (let i = 0; i < 20; i++) jit();
  for (const n of [1, 2, 3, 4, 8, 64].filter((t) => t <= Math.max(...plan.tokens))) {
    const sweep = denseSweep(clock, runner, n);
    for (let i = 0; i < 20; i++) sweep();
    await nextTurn();
  }
  const cpu = makeClock('cpu');
  const one = denseSweep(clock, runner, 1);
  for (let i = 0; i < 200; i++) {
    const w0 = performance.now(), c0 = cpu.now();
    one();
    if (cpu.now() - c0 <= 1.2 * (performance.now() - w0) / 1000) break;
    await new Promise((r) => setTimeout(r, 5)); // let the compiler threads finish
  }
}

/** Untimed sweeps before each size's timed ones. */
const DENSE_WARMUP = 2;

/**
 * The link with its one-way latency raised to half the mean of the round trips measured inside
 * steps (never lowered), every measured size shifted alike.
 */
export function withRuntimeLatency(link: LinkProfile, step: number, attend: number): LinkProfile {
  const latency = Math.max(link.latency, (step + attend) / 4);
  const shift = latency - link.latency;
  return { ...link, seconds: link.seconds.map((s) => s + shift), latency, runtime: { step, attend, pingLatency: link.latency } };
}

/** seconds = fixed + perHead x heads + perHeadToken x headTokens, non-negative, by relative error. */
export function fitDecodeAttention(points: readonly { heads: number; headTokens: number; seconds: number }[]): DecodeAttentionProfile {
  const [fixed, perHead, perHeadToken] = nonNegativeLeastSquares(
    points.map((p) => [1, p.heads, p.headTokens]), points.map((p) => p.seconds), points.map((p) => 1 / (p.seconds * p.seconds)),
  );
  return { fixed: fixed!, perHead: perHead!, perHeadToken: perHeadToken!, points: points.map((p) => ({ ...p })) };
}

function defaultDeviceName(): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
  return host === '' ? 'local-cpu' : `cpu-${host}`;
}

/** A timer reading of 0 (an op below the clock's resolution) is kept as the smallest positive time. */
function positive(seconds: number): number {
  return seconds > 0 ? seconds : 1e-9;
}

/**
 * The CPU as a DeviceSpec: peak FLOP/s from a square matrix product, memory bandwidth from a
 * matrix-vector product over a matrix larger than the caches (a streaming read), kernel overhead
 * from the smallest matrix product. Efficiencies are 1: the profile's tables carry reality.
 */
function measureDevice(clock: Clock, kernels: MatmulKernels, plan: Plan, name: string, progress: (label: string) => void): DeviceSpec {
  const now = clock.now;
  const n = plan.peakSide;
  const a = new Float32Array(n * n).fill(0.5), b = new Float32Array(n * n).fill(0.25), c = new Float32Array(n * n);
  const flopTimes: number[] = [];
  for (let r = 0; r < 1 + plan.sampling.min; r++) {
    const t0 = now();
    kernels.matmul(c, a, b, n, n, n);
    if (r > 0) flopTimes.push(now() - t0);
  }
  const peakFlops = (2 * n * n * n) / Math.min(...flopTimes); // a peak: the best repeat
  progress('peak FLOP/s');

  const cols = 4096, rows = Math.floor(plan.bandwidthBytes / 4 / cols);
  const w = new Float32Array(rows * cols).fill(0.5), x = new Float32Array(cols).fill(1), y = new Float32Array(rows);
  const readTimes: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = now();
    kernels.matmul(y, x, w, 1, cols, rows);
    if (r > 0) readTimes.push(now() - t0);
  }
  const memoryBandwidth = (rows * cols * 4) / Math.min(...readTimes);
  progress('memory bandwidth');

  const s = new Float32Array(16 * 16).fill(0.5), o = new Float32Array(16);
  const calls = 2000, overheadTimes: number[] = [];
  for (let r = 0; r < 1 + plan.sampling.min; r++) {
    const t0 = now();
    for (let i = 0; i < calls; i++) kernels.matmul(o, s, s, 1, 16, 16);
    if (r > 0) overheadTimes.push((now() - t0) / calls);
  }
  progress('kernel overhead');

  return {
    name, kind: 'cpu', peakFlops, memoryBytes: totalmem(), memoryBandwidth,
    computeEfficiency: 1, memoryEfficiency: 1, kernelOverhead: median(overheadTimes), defaultIntraLink: 'loopback',
  };
}
