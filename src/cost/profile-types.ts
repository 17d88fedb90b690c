// Owns: the shape of measured profiles (`hetis profile` output, and tables converted from
// Vidur's CSVs) that the profiled cost model reads. Must not: measure or interpolate.

import type { DeviceSpec, LinkKind } from '../hardware/types.js';
import type { AttentionInStep, DenseOp, Precision } from './types.js';

/** The model dimensions a table was measured for (a table applies only to the same shape). */
export interface ModelShape {
  dim: number;
  ffnDim: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  gatedMlp: boolean;
}

/** Seconds of one op (one layer, one rank) at ascending token counts. */
export interface OpTable {
  op: DenseOp | 'lm_head';
  /** Tensor-parallel degree the rank ran at. */
  tp: number;
  tokens: number[];
  seconds: number[];
}

/** One decode-attention measurement of one layer: `heads` (request, KV head) pairs holding `headTokens`. */
export interface AttentionPoint {
  heads: number;
  headTokens: number;
  seconds: number;
}

/**
 * Decode attention of one layer: seconds = fixed + perHead x heads + perHeadToken x headTokens,
 * fitted by least squares on `points` (which are kept for inspection and refits).
 */
export interface DecodeAttentionProfile {
  fixed: number;
  perHead: number;
  perHeadToken: number;
  points: AttentionPoint[];
}

/** Causal prefill attention of one layer over all KV heads, one chunk of `tokens` with no context. */
export interface PrefillAttentionProfile {
  tokens: number[];
  seconds: number[];
}

/** Measured tables of one device running one model shape. */
export interface DeviceProfile {
  /** DeviceSpec.name these tables describe. */
  device: string;
  model: ModelShape;
  precision: Precision;
  dense: OpTable[];
  decodeAttention?: DecodeAttentionProfile;
  prefillAttention?: PrefillAttentionProfile;
  /**
   * Seconds a step's work on this device takes beyond its ops' tables when a worker process runs
   * it: measured on one-token steps of a real local cluster (`hetis profile` of a model file),
   * their attention beyond the attention table (the dense work's in-step cost is `denseInStep`'s).
   */
  stepOverhead?: number;
  /**
   * The primary's dense work inside real steps against the tables (`hetis profile` of a model
   * file); with it, `stepOverhead` holds only what the step adds beyond dense work and attention.
   */
  denseInStep?: DenseInStep;
  /** Steps slower than back-to-back ones (`hetis profile` of a model file). */
  coldSteps?: ColdSteps;
  /**
   * The engine process's own time between two steps on this machine (scheduling, placing heads,
   * predicting, bookkeeping; `hetis profile` of a model file): the next step is issued this long
   * after the previous one's tokens are out.
   */
  engineStep?: EngineStepProfile;
  /** What each sequence adds to the runtime's round trips (`hetis profile` of a model file). */
  messagePerSequence?: MessagePerSequence;
  /**
   * What the primary's decode attention in a real step adds to one layer beyond `decodeAttention`
   * (whose table attends the same heads again and again, their KV in the caches; in a step the
   * dense work between two layers has evicted it): measured on decode steps of many sequences at a
   * short and a long context (`hetis profile` of a model file). A bare number (profiles written
   * before the per-head part was measured) is `perHeadToken` alone.
   */
  attentionInStep?: AttentionInStep | number;
  /**
   * The primary's prefill attention inside real steps against `prefillAttention`'s table, as a
   * factor at each prompt chunk's token count (`hetis profile` of a model file): short chunks run
   * well over their table in a step (the dense work between two layers evicts what the table
   * keeps in the caches).
   */
  prefillAttentionInStep?: PrefillAttentionInStep;
  /** How long moving one KV head between workers takes (`hetis profile` of a model file). */
  migration?: MigrationProfile;
  /** What drawing a token with a temperature costs a sampled row beyond greedy (`hetis profile` of a model file). */
  sampling?: SamplingCostProfile;
  /** What serving requests over HTTP adds to the engine process's time (`hetis profile` of a model file). */
  serving?: ServingProfile;
}

/**
 * Seconds each serving event adds to the engine process's time beyond its steps and
 * `engineStep`, measured on a real HTTP server over a local cluster with a client process
 * sending it requests (server/profile-serving.ts), as the excess of a step's issue interval
 * (its start to the next step's start) over its prediction against steps with no event.
 */
export interface ServingProfile {
  /** A request admitted into a step (placing its heads, its first token's bookkeeping): after that step. */
  admitted: number;
  /** A request a step finished (the engine's bookkeeping, the server building and sending its response): after that step. */
  finished: number;
  /** A request arriving (the server reading, checking and queueing it, the client sending it, on the same cores): the step it lands in. */
  arrival: number;
  /**
   * Every step: the server's work between two steps beyond the engine's own (`engineStep`: each
   * token to its response, the metrics), after that step. Absent in profiles written before it
   * was measured: nothing.
   */
  step?: number;
  /**
   * The engine's busy share (engine/busy-window.ts) of the second before each step `step` was
   * measured on, their median. Absent in profiles written before it was measured.
   */
  busy?: number;
  /**
   * `step` measured again with the engine mostly idle (one short request at a time, a few a
   * second): the engine process's own work between steps runs slower then (its code and data
   * cold, the cores idle between requests). `busy` is that run's share, `samples` its steps with
   * no event. Absent in profiles written before it was measured: `step` at any load.
   */
  light?: { step: number; busy: number; samples: number };
  /** Steps the medians were taken over: with no event, and with one event of each kind alone. */
  samples: { none: number; admitted: number; finished: number; arrival: number };
}

/**
 * Migrations as a step runs them before its work, measured as serving meets them (rare, the
 * workers they involve idle before): one migrated head's copy (export from its owner, import at
 * the new one, drop at the old: three round trips one after another) for a head of `bytes` of KV,
 * other sizes adding or saving their bytes over the link, and what a step that migrates anything
 * takes once beyond its heads (waking the workers, their migration code cold).
 */
export interface MigrationProfile {
  perHead: number;
  bytes: number;
  /** Seconds once a step that migrates; absent (profiles before it was measured, heads moved back to back): 0. */
  perStep?: number;
}

/**
 * Seconds a sampled row costs beyond greedy (argmax) on the primary that samples, by the
 * sampler's path (model/sampler.ts): `plain`, a temperature with every token a candidate (a
 * softmax over the vocabulary); `truncated`, top-k or top-p as well (the candidates pruned, then
 * picked or sorted by probability). Measured in real steps of the model's own logits.
 */
export interface SamplingCostProfile {
  plain: number;
  truncated: number;
}

/**
 * Steps that run slower than back-to-back ones, measured on a local cluster: the first step after
 * the workers idled (processes woken on cores that slept), and the decode steps right after a
 * step with prefill tokens (the primary's caches and allocator settling back).
 */
export interface ColdSteps {
  /** Idle seconds before a step, ascending. */
  idle: number[];
  /** Extra seconds of the first step after each idle. */
  wake: number[];
  /** Extra seconds of the decode steps after a prefill: [0] the next step, [1] the one after, ... */
  afterPrefill: number[];
}

/**
 * Seconds each sequence of a step adds to a round trip beyond the link's cost of its bytes (its
 * entry in the message: JSON, packing and unpacking on both sides).
 */
export interface MessagePerSequence {
  /** The engine's step message to a stage and its reply. */
  step: number;
  /** A primary's attend call to a device holding some of the sequence's heads. */
  attend: number;
}

/** The engine's time between two steps: fixed + perSequence x sequences in the step, seconds. */
export interface EngineStepProfile {
  fixed: number;
  perSequence: number;
  /**
   * Extra seconds of it after the decode steps right after a prefill: [0] after the first one,
   * [1] the second, ... (the engine's code and data come back cold, as the workers' do).
   */
  afterPrefill?: number[];
  /** The medians it was fitted to. */
  points?: { sequences: number; gap: number }[];
}

/** Message time over a link at ascending sizes, and the latency/bandwidth fitted to it. */
export interface LinkProfile {
  kind: LinkKind;
  bytes: number[];
  seconds: number[];
  latency: number;
  bandwidth: number;
  /**
   * Round trips measured inside the runtime's steps (seconds; `hetis profile` of a model file):
   * engine -> primary -> engine of a one-token step and one attend call, each less the work done.
   * When present, `seconds` and `latency` were raised so that a round trip (two messages) costs
   * their mean: `pingLatency` is the latency an isolated ping measured.
   */
  runtime?: { step: number; attend: number; pingLatency: number };
}

/** A profile file: what `hetis profile` writes (JSON). */
export interface ProfileFile {
  format: 'hetis-profile';
  version: 1;
  /** ISO time of the measurement. */
  createdAt: string;
  machine: {
    cpu: string;
    cores: number;
    memoryBytes: number;
    node: string;
    kernels: string;
    /** What the times measure: process CPU time (one thread, robust to neighbours) or wall time. */
    clock: 'cpu' | 'wall';
  };
  /** Devices described by this profile (CPU devices: measured peak FLOP/s and bandwidth). */
  devices: DeviceSpec[];
  profiles: DeviceProfile[];
  links: LinkProfile[];
}

/** Prefill attention in a step over its table, at chunk token counts (ascending). */
export interface PrefillAttentionInStep {
  tokens: number[];
  factor: number[];
}

/**
 * The primary's dense work as a worker process runs it in real steps (every layer's ops, the
 * embedding, the LM head, sampling) against the tables' prediction for the same rows: measured /
 * predicted at each token count (decode steps of that many sequences up to 16, prefill chunks
 * above), with every head attended on the primary (`local`: its attention between the ops
 * evicts their weights and activations from the caches) and with every head on an attention
 * worker (`remote`). Measured on the development VM: local 1.1-1.3, remote 1.0-1.1.
 */
export interface DenseInStep {
  tokens: number[];
  local: number[];
  remote: number[];
}
