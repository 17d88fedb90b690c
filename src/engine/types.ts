// Owns: the engine's boundary data: requests in, step descriptions to the executor, step
// results back, and the records a run leaves (per request, per step) for metrics.
// Must not: compute (scheduler.ts, engine.ts do).

import type { StepShape } from './step-cost.js';

/** How a request's tokens are drawn (real serving); absent: greedy. */
export interface RequestSampling {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = no limit. */
  topK: number;
  /** 1 = no limit. */
  topP: number;
  /** Seed of the request's own random stream. */
  seed: number;
}

/** A request as the engine receives it. */
export interface EngineRequest {
  id: string;
  /** Arrival time on the engine's clock, seconds. */
  arrival: number;
  /** Prompt token ids (real serving), or only their number (simulation). */
  promptTokens?: readonly number[];
  promptLength: number;
  /** Generation stops after this many tokens at most. */
  maxTokens: number;
  /**
   * Positions whose KV arrives with the request (computed elsewhere: a phase-split deployment's
   * prefill pool); they are not computed here unless the request is preempted and recomputed.
   */
  precomputed?: number;
  /**
   * Simulation only: the number of tokens this request generates (from the trace); the engine
   * does not read it to schedule, only the simulated executor's "sampler" does, to end it.
   */
  outputLength?: number;
  /** Real serving: how its tokens are sampled (absent: greedy). */
  sampling?: RequestSampling;
}

export type RequestStatus = 'queued' | 'running' | 'preempted' | 'finished';
export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/** One sequence's part of a step: `tokens` positions starting at `start` (a prefill chunk or one decode token). */
export interface StepChunk {
  request: string;
  start: number;
  count: number;
  /** The chunk ends at the sequence's last known token: the step samples a new token for it. */
  sample: boolean;
  /** Token ids of the chunk (real serving). */
  tokens?: readonly number[];
  /** Real serving, sampling chunks only: how to draw the token (absent: greedy). */
  sampling?: RequestSampling;
}

/** A head migration the executor carries out before the step (copy KV, then switch). */
export interface StepMigration {
  request: string;
  head: number;
  from: string;
  to: string;
  /** KV positions to copy (0 when rebuilt from tokens). */
  positions: number;
  rebuild: boolean;
}

/** One engine step, as the executor receives it (plain data). */
export interface StepPlan {
  index: number;
  chunks: StepChunk[];
  /** For every request in the step: the device id holding each of its KV heads. */
  headDevices: Record<string, readonly string[]>;
  /** Requests whose KV is gone after this step (finished earlier, preempted, aborted): free it. */
  freed: string[];
  migrations: StepMigration[];
  /** Predicted latency and issue interval of the step by the cost model, seconds, with the breakdown. */
  predicted: { seconds: number; interval: number; parts: Record<string, number> };
  /** What the prediction was computed from (a simulated executor re-costs it with its own model). */
  shape: StepShape;
}

/** What the executor returns. */
export interface StepResult {
  /** Sampled token per request that had a sampling chunk. */
  sampled: Record<string, number>;
  /** Latency of the step on the executor's clock: from issue until its tokens are out, seconds. */
  seconds: number;
  /**
   * Pipelined executors: seconds until the next micro-batch can be issued (the busiest stage);
   * absent: the step held the whole pipeline (= seconds).
   */
  interval?: number;
  /** Measured time breakdown of the step, seconds per part (real executors). */
  parts?: Record<string, number>;
  /** Compute seconds each engine device was busy in the step (parallel to the engine's devices; the simulated executor). */
  busy?: number[];
}

/** Contract of the thing that runs steps: real workers, or the simulated clock. */
export interface Executor {
  execute(step: StepPlan): Promise<StepResult>;
  /** Frees KV of finished requests now, outside a step (the engine is going idle). Optional. */
  release?(requests: readonly string[]): Promise<void>;
}

/** What a finished (or failed) request leaves behind. Times on the engine clock, seconds. */
export interface RequestRecord {
  id: string;
  arrival: number;
  promptLength: number;
  /** Tokens generated. */
  outputLength: number;
  /** When the first output token was produced (undefined if none was). */
  firstTokenAt?: number;
  finishedAt: number;
  finishReason: FinishReason;
  preemptions: number;
}

/** One step's record. */
export interface StepRecord {
  index: number;
  start: number;
  /** Latency of the step (issue to tokens out). */
  seconds: number;
  /** Time until the next step was issued (= seconds without pipelining; a simulated step also counts the engine's work after it, and while it ran). */
  interval: number;
  predictedSeconds: number;
  /** The cost model's prediction of `interval` (its latency and the engine's work after it). */
  predictedInterval?: number;
  prefillTokens: number;
  decodeTokens: number;
  migrations: number;
  migratedBytes: number;
  /** KV blocks used per device id after the step. */
  kvUsedBlocks: Record<string, number>;
  /** The executor's measured breakdown, seconds per part (real executors only). */
  parts?: Record<string, number>;
  /** With `parts`: the cost model's breakdown of its prediction (its own part names). */
  predictedParts?: Record<string, number>;
  /** With `parts`: the step as the cost model saw it, so that another cost model can predict it again (`stepCost`). */
  shape?: StepShape;
  /** Compute seconds each device (by id) was busy in the step, when the executor tells. */
  busy?: Record<string, number>;
}

/** What an engine tells its owner as requests progress (real serving streams from these). */
export interface EngineListener {
  /** A token was generated for request `id` at time `at` (engine clock). */
  onToken?(id: string, token: number, at: number): void;
  /** Request `record.id` finished (any reason); nothing more comes for it. */
  onFinish?(record: RequestRecord): void;
  /** A step finished (its record, also appended to Engine.steps). */
  onStep?(record: StepRecord): void;
}
