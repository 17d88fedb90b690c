// Owns: the shape of measured profiles (`hetis profile` output, and tables converted from
// Vidur's CSVs) that the profiled cost model reads. Must not: measure or interpolate.

import type { DeviceSpec, LinkKind } from '../hardware/types.js';
import type { DenseOp, Precision } from './types.js';

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
   * it, woken by the step's message (caches and predictors cold after waiting): measured on
   * one-token steps of a real local cluster (`hetis profile` of a model file).
   */
  stepOverhead?: number;
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
