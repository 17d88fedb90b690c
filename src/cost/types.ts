// Owns: the CostModel contract every planner, dispatcher, simulator and engine call goes
// through, and the shape of its estimates. Must not: implement estimates (roofline.ts and
// profiled.ts do) or do I/O.

import type { ModelSpec } from '../model/spec.js';
import type { DeviceSpec, LinkSpec } from '../hardware/types.js';

/** Bytes per element of what a deployment stores and moves. GPUs: 2/2/2 (FP16); our CPU runtime: 4/4/4. */
export interface Precision {
  weight: number;
  kv: number;
  /** Activations on the wire and in all-reduce. */
  activation: number;
}

/** Seconds per serving event (CostModel.servingEvents). */
export interface ServingEvents {
  admitted: number;
  finished: number;
  arrival: number;
  /** Every step (the server's work on its tokens beyond the engine's own): after it. */
  step: number;
  /**
   * Where `step` was measured: the engine's busy share of the second before its steps (median).
   * With `light`, a step after a busier second costs `step`, after an idler one up to
   * `light.step` (servingStepAt). Absent: `step` at any load.
   */
  busy?: number;
  /** `step` measured again with the engine mostly idle, at busy share `busy`. */
  light?: { step: number; busy: number };
}

/** No serving costs (a model without them). */
export const NO_SERVING_EVENTS: ServingEvents = Object.freeze({ admitted: 0, finished: 0, arrival: 0, step: 0 });

export const FP16: Precision = { weight: 2, kv: 2, activation: 2 };
export const FP32: Precision = { weight: 4, kv: 4, activation: 4 };

/**
 * A time estimate with its breakdown: `parts` maps each component (e.g. 'qkv', 'mlp_up',
 * 'overhead', 'latency') to seconds, and the parts sum to `seconds`.
 */
export interface Estimate {
  seconds: number;
  parts: Record<string, number>;
  /**
   * Where each part came from, by part name, when not every part is the roofline's: the
   * profiled model fills it for every part; absent means all parts are roofline estimates.
   */
  source?: Record<string, EstimateSource>;
}

/**
 * 'roofline': the analytic model; 'table': interpolated inside a measured grid; 'table-edge':
 * outside the grid, the roofline's shape scaled to meet the nearest measured point; 'fit':
 * coefficients fitted to measurements (decode attention, links).
 */
export type EstimateSource = 'roofline' | 'table' | 'table-edge' | 'fit';

/** Ops of one dense layer, named as in Vidur's profiles (see docs/cost-model.md). */
export type DenseOp =
  | 'input_norm' // RMSNorm/LayerNorm before attention
  | 'qkv' // Q, K, V projections
  | 'rope'
  | 'o' // attention output projection
  | 'post_attn_norm'
  | 'mlp_up' // gate + up (gated) or up (plain)
  | 'act' // SiLU·mul or ReLU/GELU
  | 'mlp_down'
  | 'add'; // the two residual adds

/** One sequence's part of a prefill step: `tokens` new tokens after `context` cached ones. */
export interface PrefillChunk {
  tokens: number;
  context: number;
}

/**
 * The primary's decode attention inside a real step beyond the attention table, per layer:
 * perHead x heads + perHeadToken x head-tokens, seconds (perHead may be negative: the table's own
 * per-head cost can read high).
 */
export interface AttentionInStep {
  perHead: number;
  perHeadToken: number;
}

/**
 * The cost model of one model at one precision. Every time is for ONE layer on ONE device
 * unless the method says otherwise; callers multiply by layers.
 *
 * Units: a "head-token" is the K and V of one KV head for one token position (in one layer
 * for time, in every layer for memory: see kvBytesPerHeadToken).
 */
export interface CostModel {
  readonly model: ModelSpec;
  readonly precision: Precision;

  /** The dense ops of one layer for `tokens` tokens on one rank of a `tp`-way tensor-parallel group. */
  denseLayer(device: DeviceSpec, tokens: number, tp: number): Estimate;
  /** Final norm and LM head for `rows` tokens that need logits, on one rank of `tp`. */
  lmHead(device: DeviceSpec, rows: number, tp: number): Estimate;
  /** Causal attention of one layer over prefill chunks, for `kvHeads` KV heads (with their query heads). */
  prefillAttention(device: DeviceSpec, chunks: readonly PrefillChunk[], kvHeads: number): Estimate;
  /**
   * Decode attention of one layer on a device that holds `headTokens` head-tokens in total
   * (sum over its (request, KV head) pairs of the context length) for `heads` such pairs.
   */
  decodeAttention(device: DeviceSpec, headTokens: number, heads: number): Estimate;
  /** Ring all-reduce of `bytes` over `ranks` devices joined by `link`. */
  allReduce(link: LinkSpec, bytes: number, ranks: number): Estimate;
  /** One point-to-point message of `bytes` over `link` (pipeline hop, q/output of remote heads, KV copy). */
  sendRecv(link: LinkSpec, bytes: number): Estimate;
  /**
   * Optional: seconds a device adds to one attention call (one layer's attention for the heads it
   * holds) beyond `compute`, the call's attention time by decodeAttention + prefillAttention.
   * Absent: nothing. The local cluster's emulated slow devices use it (runtime/local-devices.ts).
   */
  attendDelay?(device: DeviceSpec, compute: number): number;
  /**
   * Optional: seconds one step's work on `device` takes beyond its ops, when a worker process
   * runs the step (profiled CPU devices: DeviceProfile.stepOverhead). Absent: nothing.
   */
  stepOverhead?(device: DeviceSpec): number;
  /**
   * Optional: how much longer the primary's dense work (layers, LM head) takes inside a step a
   * worker process runs than its ops' tables say, at `tokens` rows with a share `localShare` in
   * [0, 1] of the step's attention done on the primary itself (profiled CPU devices:
   * DeviceProfile.denseInStep). A factor; absent: 1.
   */
  denseInStep?(device: DeviceSpec, tokens: number, localShare: number): number;
  /**
   * Optional: seconds a step on `device` takes beyond a back-to-back one when it comes `idle`
   * seconds after the previous step ended (workers woken on cores that slept) and, for a step
   * with no prefill tokens, `sincePrefill` steps after the last step that had some (0: right
   * after; undefined: a step with prefill, or none yet). Worker processes only (profiled CPU
   * devices: DeviceProfile.coldSteps). Absent: nothing.
   */
  coldStep?(device: DeviceSpec, idle: number, sincePrefill: number | undefined): number;
  /**
   * Optional: seconds the engine process spends between two steps of `sequences` sequences
   * (scheduling, placing, predicting, bookkeeping) on the machine of `device`, when the engine
   * drives worker processes (DeviceProfile.engineStep); for a decode step `sincePrefill` steps
   * after the last one with prefill tokens (0: right after), also what the engine's cold code
   * and data add then. Absent: nothing.
   */
  engineStep?(device: DeviceSpec, sequences: number, sincePrefill?: number): number;
  /**
   * Optional: seconds serving over HTTP adds to the engine process per event on the machine of
   * `device` (DeviceProfile.serving): each request admitted into a step and each one a step
   * finished (after that step), each request arriving (the step it lands in). Absent: nothing.
   */
  servingEvents?(device: DeviceSpec): ServingEvents;
  /**
   * Optional: seconds each sequence of a step adds to the engine's step message round trip
   * (`step`) and to an attend call of a device holding some of its heads (`attend`), beyond the
   * link's cost of the bytes, when `device` runs worker processes (DeviceProfile.messagePerSequence).
   */
  messagePerSequence?(device: DeviceSpec): { step: number; attend: number };
  /**
   * Optional: what the primary's decode attention in a real step adds to one layer beyond
   * `decodeAttention`, per head and per (KV head, token), when `device` runs worker processes
   * (DeviceProfile.attentionInStep). Absent: nothing.
   */
  attentionInStep?(device: DeviceSpec): AttentionInStep;
  /**
   * Optional: the factor on the primary's prefill attention of a `tokens`-token prompt chunk in a
   * real step, when `device` runs worker processes (DeviceProfile.prefillAttentionInStep). Absent: 1.
   */
  prefillAttentionInStep?(device: DeviceSpec, tokens: number): number;
  /**
   * Optional: seconds moving one KV head of `bytes` between worker processes over `link` takes
   * before a step (export, import, drop one after another) on the machine of `device`
   * (DeviceProfile.migration).
   * Absent: the runtime step cost's round trips over the link.
   */
  migrateHead?(device: DeviceSpec, link: LinkSpec, bytes: number): number | undefined;
  /**
   * Optional: seconds a step that migrates any head takes once beyond its heads' copies on the
   * machine of `device` (the workers woken, their migration code cold: MigrationProfile.perStep).
   * Absent: 0.
   */
  migrationStep?(device: DeviceSpec): number;
  /**
   * Optional: seconds one row sampled by `kind` costs beyond greedy on the machine of `device`
   * (DeviceProfile.sampling). Absent: 0 (sampling is charged as greedy, within the LM head).
   */
  sampling?(device: DeviceSpec, kind: 'plain' | 'truncated'): number;

  /** Weight bytes held by one rank of `tp` for `layers` layers, plus embedding / LM head when asked. */
  weightBytes(layers: number, tp: number, extras: { embedding: boolean; lmHead: boolean }): number;
  /** KV bytes of one head-token across ALL layers: 2 (K and V) x headDim x nLayers x precision.kv. */
  kvBytesPerHeadToken(): number;
}
