// Owns: measuring the round trips of the distributed runtime as it runs a step: a local cluster
// of one primary and one attention worker process (the model file's weights), decode steps of one
// sequence with its heads on the primary (the engine's step message and reply, beyond the
// primary's own work) and with its heads on the attention worker (one attend call per layer,
// beyond its attention), and what each further sequence adds to both. Messages inside a step cost more than an isolated ping between two
// processes (frames with several tensors and a JSON part, handlers, processes waking between
// layers on shared cores); how much more the primary's own work in such a step takes than the
// profile's tables say, and its dense work against the same work timed beside the steps outside
// them (heads on the primary and off it, one to 192 rows); how much slower the first steps after
// the cluster idled are; through profile-engine.ts (a real Engine driving the cluster), the
// steps right after a prefill and the engine's own time between two steps; through
// profile-step-extras.ts, migrations and sampling with a temperature. Must not: leave a worker
// running.

import type { ModelSpec } from '../model/spec.js';
import { median, trimmedMean } from '../util/fit.js';
import { ClusterExecutor } from './cluster-executor.js';
import { startLocalCluster } from './local-cluster.js';
import type { StepPlan } from '../engine/types.js';
import { AFTER_PREFILL_STEPS, measureAfterPrefill, measureEngineGaps, runEngine } from './profile-engine.js';
import type { ColdSteps, DenseInStep, EngineStepProfile, MessagePerSequence, MigrationProfile, PrefillAttentionInStep, SamplingCostProfile } from '../cost/profile-types.js';
import { measureMigrations, measureSampling } from './profile-step-extras.js';
import { nextTurn } from '../util/turn.js';
import type { AttentionInStep } from '../cost/types.js';
import { blockFor } from '../util/block.js';

export interface RuntimeRoundTrips {
  /** Mean (trimmedMean) engine -> primary -> engine round trip of a one-token step as the engine drives it, less the primary's work, seconds. */
  step: number;
  /** Mean (trimmedMean) primary -> attention worker -> primary round trip of one layer's attend call, less the attention, seconds. */
  attend: number;
  /**
   * Median of the primary's attention in a one-token step with its heads local beyond the
   * attention table's (a layer's call around the heads), seconds (>= 0); the dense work's in-step
   * cost is `denseInStep`'s.
   */
  stepOverhead: number;
  /** The primary's dense work in real steps against the tables, heads local and remote. */
  denseInStep: DenseInStep;
  /** Steps measured of each kind. */
  steps: number;
  /** Steps slower than back-to-back ones: the first after an idle, the decode steps after a prefill. */
  cold: ColdSteps;
  /** The engine's own time between two steps (Engine + EngineLoop over the cluster). */
  engineStep: EngineStepProfile;
  /** What each sequence of a step adds to its step message's and its attend calls' round trips. */
  messagePerSequence: MessagePerSequence;
  /** What the primary's decode attention in a step adds to a layer beyond the table, per head and per (KV head, token). */
  attentionInStep: AttentionInStep;
  /** The primary's prefill attention in a step over its table, at the dense-in-step probe's prompt chunks (absent without a table). */
  prefillAttentionInStep?: PrefillAttentionInStep;
  /** Migrations as serving meets them: once a step that migrates, and each head's copy (export, import, drop) at a head of `bytes` of KV. */
  migration: MigrationProfile;
  /** What a row sampled with a temperature costs beyond greedy, without and with top-p. */
  sampling: SamplingCostProfile;
}

/** Sequences a step in the many-sequence attend measurement. */
const MANY_SEQUENCES = 12;
/** The long context of the in-step attention measurement, tokens (a scaled conversation's longest). */
const LONG_CONTEXT = 224;

/** Idle times before the wake-up measurements, seconds (a gap between two steps of a busy engine is ~0.05 ms). */
export const WAKE_IDLE_SECONDS: readonly number[] = [0.0005, 0.002, 0.01, 0.1];
/** Token counts of the dense-in-step measurement: decode steps of that many sequences up to 16, prefill chunks above. */
const DENSE_IN_STEP_TOKENS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 192];
/** The same for a quick profile (`hetis serve`'s first start). */
const DENSE_IN_STEP_TOKENS_QUICK: readonly number[] = [1, 4, 16, 48];

/**
 * Step plans of a probe driving a cluster by hand (no engine): `plan(request, owner, start,
 * count)` is one chunk of `count` positions of `request` from `start` (fixed pseudo-random token
 * ids), every KV head on `owner`, sampled; numbered one after another. The shape and prediction
 * are empty (the workers do not read them).
 */
export function probePlans(spec: ModelSpec): (request: string, owner: string, start: number, count: number) => StepPlan {
  let index = 0;
  return (request, owner, start, count) => ({
    index: index++, headDevices: { [request]: Array.from({ length: spec.nKvHeads }, () => owner) }, freed: [], migrations: [],
    chunks: [{ request, start, count, sample: true, tokens: Array.from({ length: count }, (_, i) => 1 + ((start + i) * 7) % (spec.vocabSize - 1)) }],
    predicted: { seconds: 0, interval: 0, parts: {} },
    shape: { prefill: [], decodeTokens: 0, sampledRows: 0, decodeHeads: [], decodeHeadTokens: [], shippedHeadTokens: [], migratedHeadTokens: [] },
  });
}

/** Requests the probes make up (unique ids on the cluster's workers). */
let probeRequests = 0;

/** One step of every plan's chunks together (one-sequence plans of the same step index). */
function together(plans: readonly StepPlan[]): StepPlan {
  return { ...plans[0]!, headDevices: Object.assign({}, ...plans.map((p) => p.headDevices)), chunks: plans.flatMap((p) => p.chunks) };
}

/** A blocking sleep (the probe is the engine: between two steps of a busy period it sleeps like a waiting event loop). */
function sleep(seconds: number): void {
  blockFor(seconds * 1e3);
}

/**
 * Runs `steps` one-token decode steps of one sequence (after a `context`-token prefill) with its
 * heads on the primary, then as many with its heads on the attention worker, and returns the
 * median round trips. `attention(headTokens, heads)` is one layer's attention time by the
 * profile, subtracted from each attend call.
 */
export async function measureRuntimeRoundTrips(o: {
  spec: ModelSpec; modelPath: string; steps?: number; context?: number;
  attention: (headTokens: number, heads: number) => number;
  /** One layer's prefill attention of a `tokens`-token prompt chunk over every KV head, by the profile's table. Absent: not measured. */
  prefillAttention?: (tokens: number) => number;
  /** The primary's dense work (every layer's ops and the LM head) for `tokens` rows and `logitRows` sampled rows, by the tables. */
  dense: (tokens: number, logitRows: number) => number;
  /**
   * The same dense work timed now outside a step (the profiler's own process, as its tables were
   * measured), for the dense-in-step ratios: timed between the steps of each point, so the
   * machine's drift since the tables were measured stays out of the ratio. Absent: `dense`.
   */
  isolatedDense?: (tokens: number, logitRows: number) => number;
  onSpawn?: (pid: number) => void;
  /** Fewer repeats (a quick profile). */
  quick?: boolean;
}): Promise<RuntimeRoundTrips> {
  const spec = o.spec;
  const n = o.steps ?? 100;
  const context = Math.min(o.context ?? 32, Math.floor(spec.contextLength / 2));
  const kv = 16 * 2 * spec.headDim * spec.nLayers * 4 * spec.nKvHeads * Math.ceil(spec.contextLength / 16);
  // Each worker's KV: room for the many-sequence measurement's sequences at full context, and a few more.
  const kvBytes = (MANY_SEQUENCES + 4) * kv;
  const layout = { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: kvBytes }, attention: [{ id: 'attn', kvCapacityBytes: kvBytes }], blockSize: 16 };
  const cluster = await startLocalCluster({ spec, modelPath: o.modelPath, layout, kernels: 'auto' });
  for (const p of cluster.processes) if (p.pid !== undefined) o.onSpawn?.(p.pid);
  try {
    const ex = new ClusterExecutor(spec, cluster.workers);
    const plan = probePlans(spec);
    const run = async (request: string, owner: string): Promise<Record<string, number>[]> => {
      await ex.execute(plan(request, owner, 0, context));
      const parts: Record<string, number>[] = [];
      const warm = o.quick === true ? 50 : 200;
      for (let i = 0; i < warm + n; i++) {
        const pos = context + (i % (spec.contextLength - context - 1));
        const r = await ex.execute(plan(request, owner, pos, 1));
        if (i >= warm) parts.push({ ...r.parts, position: pos, seconds: r.seconds });
        await nextTurn(); // the engine between steps
      }
      await ex.release([request]);
      return parts;
    };
    // Warm the processes up first: a fresh cluster's steps run 10-20% slower until its JIT has
    // seen tens of seconds of varied work; serving is measured warm.
    for (let i = 0; i < (o.quick === true ? 1 : 4); i++) {
      await runEngine(spec, ex, kvBytes, 32, Array.from({ length: 8 }, () => ({ id: `probe-${probeRequests++}`, maxTokens: 64 })));
    }
    const local = await run('local', 'primary');
    const remote = await run('remote', 'attn');
    const attend = remote.map((p) => ((p['attention'] ?? 0) + (p['wait'] ?? 0)) / spec.nLayers - o.attention(spec.nKvHeads * ((p['position'] ?? context) + 1), spec.nKvHeads));
    // The same with MANY_SEQUENCES sequences a step: what each sequence adds to an attend call
    // beyond its attention (its entry in the message, packing and unpacking on both sides).
    const ids = Array.from({ length: MANY_SEQUENCES }, (_, j) => `many-${j}`);
    for (const id of ids) await ex.execute(plan(id, 'attn', 0, context));
    const attendMany: number[] = [];
    const manySteps = Math.min(o.quick === true ? 30 : 100, spec.contextLength - context - 2);
    for (let i = 0; i < manySteps; i++) {
      const pos = context + i;
      const r = await ex.execute(together(ids.map((id) => plan(id, 'attn', pos, 1))));
      if (i >= manySteps / 5) {
        attendMany.push(((r.parts?.['attention'] ?? 0) + (r.parts?.['wait'] ?? 0)) / spec.nLayers - o.attention(MANY_SEQUENCES * spec.nKvHeads * (pos + 1), MANY_SEQUENCES * spec.nKvHeads));
      }
      await nextTurn();
    }
    await ex.release(ids);
    const attendPerSequence = Math.max(0, (trimmedMean(attendMany) - trimmedMean(attend)) / (MANY_SEQUENCES - 1));
    const attentionInStep = await measureAttentionInStep(spec, plan, ex, o.attention, context, o.quick === true);
    const { denseInStep, prefillAttentionInStep } = await measureDenseInStep(spec, plan, ex, o.isolatedDense ?? o.dense, o.prefillAttention, o.quick === true);
    // The dense part of these steps is denseInStep's (measured against the work timed beside its
    // own steps): against the tables it would also carry the machine's drift since they were
    // measured (0 to 0.09 ms a step between profiles). What is left is the attention's excess.
    const over = local.map((p) => (p['attention'] ?? 0) - spec.nLayers * o.attention(spec.nKvHeads * ((p['position'] ?? context) + 1), spec.nKvHeads));

    const migration = await measureMigrations(spec, plan, ex, o.quick === true);
    const sampling = await measureSampling(spec, plan, ex, o.quick === true);

    // Waking up: after each idle, one one-token step, against the median back-to-back step (the local run's).
    const settled = median(local.map((p) => p['seconds'] ?? 0));
    const repeats = o.quick === true ? 4 : 16;
    await ex.execute(plan('wake', 'primary', 0, context));
    const woken = WAKE_IDLE_SECONDS.map(() => [] as number[]);
    let pos = context;
    for (let r = 0; r < repeats; r++) {
      for (const [g, idle] of WAKE_IDLE_SECONDS.entries()) {
        sleep(idle);
        if (pos >= spec.contextLength - 1) pos = context;
        woken[g]!.push((await ex.execute(plan('wake', 'primary', pos++, 1))).seconds - settled);
        await nextTurn();
      }
    }
    await ex.release(['wake']);
    const afterPrefill = await measureAfterPrefill(spec, ex, kvBytes, o.quick === true ? 6 : 24);
    const cold: ColdSteps = { idle: [...WAKE_IDLE_SECONDS], wake: woken.map((xs) => Math.max(0, median(xs))), afterPrefill: afterPrefill.steps };
    const driven = await measureEngineGaps(spec, ex, kvBytes, o.quick === true ? 24 : 64);
    // The step's round trip as the engine drives it: steps issued back to back by hand (above)
    // find the primary still busy after its reply and read ~0.08 ms more than serving does.
    const step = Number.isFinite(driven.transport) ? driven.transport : trimmedMean(local.map((p) => p['transport'] ?? 0));
    return {
      step, attend: Math.max(0, trimmedMean(attend)), stepOverhead: Math.max(0, median(over)), denseInStep, steps: n, cold,
      engineStep: { ...driven.engineStep, afterPrefill: afterPrefill.engine },
      messagePerSequence: { step: driven.stepPerSequence, attend: attendPerSequence }, attentionInStep,
      ...(prefillAttentionInStep !== undefined ? { prefillAttentionInStep } : {}),
      migration, sampling,
    };
  } finally {
    await cluster.close();
  }
}

/**
 * What the primary's decode attention in a real step adds to a layer beyond the table
 * (`attention`, per layer): decode steps of MANY_SEQUENCES sequences, every head on the primary,
 * at `short` and at LONG_CONTEXT tokens of context (what the context holds); the median excess of
 * each over the table. Their difference per head-token is `perHeadToken` (>= 0): the table attends
 * the same heads again and again, in a step the dense work between two layers has evicted their
 * KV from the caches (here 11-12 ns a head-token on a table of 30 ns). What is left of the short
 * context's excess, per head, is `perHead` (any sign: here 0.03-0.22 us on tables of 1.2-1.8 us a
 * head, +0.3 to +0.8 us against an earlier one of 1.1 us: the table's per-head fit moves between
 * profiles); served steps at short contexts ran 10-46% over the table with the per-head-token
 * part alone.
 */
async function measureAttentionInStep(
  spec: ModelSpec, plan: (request: string, owner: string, start: number, count: number) => StepPlan,
  ex: ClusterExecutor, attention: (headTokens: number, heads: number) => number, short: number, quick: boolean,
): Promise<AttentionInStep> {
  const steps = quick ? 12 : 32;
  const long = Math.min(LONG_CONTEXT, spec.contextLength - steps - 2);
  if (long <= short) return { perHead: 0, perHeadToken: 0 };
  const heads = MANY_SEQUENCES * spec.nKvHeads;
  const excess = async (context: number): Promise<{ excess: number; headTokens: number }> => {
    const ids = Array.from({ length: MANY_SEQUENCES }, () => `in-step-${probeRequests++}`);
    for (const id of ids) await ex.execute(plan(id, 'primary', 0, context));
    const over: number[] = [], headTokens: number[] = [];
    for (let i = 0; i < steps; i++) {
      const pos = context + i;
      const r = await ex.execute(together(ids.map((id) => plan(id, 'primary', pos, 1))));
      if (i >= steps / 4) { // the first steps after the prompts' prefill are cold ones
        headTokens.push(heads * (pos + 1));
        over.push((r.parts?.['attention'] ?? 0) / spec.nLayers - attention(heads * (pos + 1), heads));
      }
      await nextTurn();
    }
    await ex.release(ids);
    return { excess: median(over), headTokens: median(headTokens) };
  };
  const a = await excess(short), b = await excess(long);
  const perHeadToken = Math.max(0, (b.excess - a.excess) / (b.headTokens - a.headTokens));
  return { perHead: (a.excess - perHeadToken * a.headTokens) / heads, perHeadToken };
}

/**
 * The primary's dense work in real steps (its `dense` part: every layer's ops, the embedding, the
 * LM head, sampling) against `dense(tokens, logitRows)` (timed in rounds between the steps), at
 * each of DENSE_IN_STEP_TOKENS: decode steps of that many sequences (32-token prompts, at most
 * half the context) up to 16, prefill chunks of that many tokens above (those the context holds);
 * every head on the primary (`local`) and every head on the attention worker (`remote`). The
 * median in steps over the median outside; the steps right after the prompts' prefill and after
 * each timing outside (the workers idled) are run untimed. The same prompt chunks' steps with every
 * head on the primary also give its prefill attention over `prefillAttention(tokens)` (one layer's,
 * by the table), their median at each chunk: `prefillAttentionInStep` (here 1.10-1.14 at 32
 * tokens, 1.05 at 64, 0.91-0.99 from 128 on; served 1-64-token prompts ran 1.35-1.5x an
 * earlier profile's table).
 */
async function measureDenseInStep(
  spec: ModelSpec, plan: (request: string, owner: string, start: number, count: number) => StepPlan,
  ex: ClusterExecutor, dense: (tokens: number, logitRows: number) => number, prefillAttention: ((tokens: number) => number) | undefined, quick: boolean,
): Promise<{ denseInStep: DenseInStep; prefillAttentionInStep?: PrefillAttentionInStep }> {
  const context = Math.min(32, Math.floor(spec.contextLength / 2));
  const tokens = (quick ? DENSE_IN_STEP_TOKENS_QUICK : DENSE_IN_STEP_TOKENS).filter((n) => n <= 16 || n + 1 < spec.contextLength);
  // Rounds of (the work outside a step, a few steps), so both see the same moments of a machine
  // whose speed jitters from one fraction of a second to the next.
  const rounds = quick ? 2 : 6;
  const attention: number[] = []; // the primary's prefill attention in its prompt-chunk steps over the table, by chunk
  const ratio = async (owner: string, n: number): Promise<number> => {
    const rows = n <= 16 ? n : 1;
    const inStep: number[] = [], outside: number[] = [], attended: number[] = [];
    const ids = n <= 16 ? Array.from({ length: n }, () => `dense-${probeRequests++}`) : [];
    for (const id of ids) await ex.execute(plan(id, owner, 0, context));
    let k = 0; // decode steps so far: positions cycle through what the context holds after the prompt
    for (let r = 0; r < rounds; r++) {
      outside.push(dense(n, rows));
      // The workers idled while this process timed the work outside a step: the first steps
      // after that (and after the prompts' prefill) are cold ones (coldSteps) and are not timed.
      const settle = r === 0 ? AFTER_PREFILL_STEPS : 4;
      if (n <= 16) {
        for (let i = 0; i < settle + 8; i++) {
          const pos = context + (k++ % (spec.contextLength - context - 1));
          const res = await ex.execute(together(ids.map((id) => plan(id, owner, pos, 1))));
          if (i >= settle) inStep.push(res.parts?.['dense'] ?? NaN);
          await nextTurn();
        }
      } else {
        for (let i = 0; i < 3; i++) {
          const id = `dense-${probeRequests++}`;
          const res = await ex.execute(plan(id, owner, 0, n));
          if (i > 0) {
            inStep.push(res.parts?.['dense'] ?? NaN);
            if (prefillAttention !== undefined) attended.push((res.parts?.['attention'] ?? NaN) / spec.nLayers / prefillAttention(n));
          }
          await ex.release([id]);
          await nextTurn();
        }
      }
    }
    await ex.release(ids);
    if (owner === 'primary' && attended.length > 0) attention.push(median(attended));
    return median(inStep) / median(outside);
  };
  const local: number[] = [], remote: number[] = [];
  for (const n of tokens) {
    local.push(await ratio('primary', n));
    remote.push(await ratio('attn', n));
  }
  const chunks = tokens.filter((n) => n > 16);
  const measured = attention.length === chunks.length && chunks.length > 0 && attention.every((x) => Number.isFinite(x) && x > 0);
  return { denseInStep: { tokens, local, remote }, ...(measured ? { prefillAttentionInStep: { tokens: chunks, factor: attention } } : {}) };
}
