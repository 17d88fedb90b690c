// Owns: the plain data that crosses between the engine's process and its workers: what a
// worker is assigned to be, a primary's step, KV exports, worker stats, and the handle the
// cluster executor drives a worker through (in this process or over the transport). Must not:
// compute or do I/O.

import type { RequestSampling } from '../engine/types.js';
import type { ModelSpec } from '../model/spec.js';
import type { HeadKvExport } from './head-kv.js';
import type { PrimaryTiming, StepSequence } from './primary.js';
import type { GcStats } from '../util/gc-stats.js';

/** A primary rank's place in the dense path. */
export interface PrimaryAssignment {
  stage: number;
  stages: number;
  /** Layers [start, end) of its stage. */
  layers: [number, number];
  /** Tensor-parallel rank and group size within the stage. */
  rank: number;
  size: number;
  /** Transport addresses of the stage's ranks, by rank (for the all-reduce). */
  tpPeers: string[];
}

/** Everything a worker needs to know to serve, sent once after it connects. */
export interface WorkerAssignment {
  /** The engine's dispatch device this worker is (part of). */
  deviceId: string;
  spec: ModelSpec;
  /** Model file to load weights from (primaries only). */
  modelPath?: string;
  tokenizerPath?: string;
  primary?: PrimaryAssignment;
  kv: { layers: [number, number]; blockSize: number; capacityBlocks: number };
  /** Attention device id -> transport address (primaries connect to them). */
  attentionPeers: Record<string, string>;
  /** Attention here takes this many times its compute time (>= 1: an emulated slower device). */
  slowdown: number;
}

/** One engine step as a primary rank receives it. Sequence owners are engine device ids. */
export interface PrimaryStep {
  index: number;
  tokens: Int32Array;
  seqs: Int32Array;
  positions: Int32Array;
  sequences: StepSequence[];
  /** Batch rows that need a token (last stage samples them). */
  logitRows: Int32Array;
  /** How to draw each of those rows' token (null: greedy), parallel to logitRows. */
  sampling: (RequestSampling | null)[];
  /** Hidden states [n, dim] from the previous stage (later stages). */
  x?: Float32Array;
}

export interface PrimaryStepReply {
  x: Float32Array;
  /** The last stage's rank 0: the token sampled for each logit row. */
  tokens?: Int32Array;
  timing: PrimaryTiming;
}

export interface WorkerStats {
  deviceId: string;
  pid: number;
  /** (sequence, KV head) pairs held. */
  heads: number;
  usedBlocks: number;
  capacityBlocks: number;
  /** Resident memory of the worker process, bytes. */
  rssBytes: number;
  /** The worker process's garbage collections since it was assigned its role (in-process workers share their process's). */
  gc: GcStats;
}

/** How the cluster executor talks to one worker (in-process object, or a transport peer). */
export interface WorkerHandle {
  readonly assignment: WorkerAssignment;
  /** False once its process is known gone (connection closed, heartbeat lost). */
  alive(): boolean;
  /** Primaries: (re)connect to attention device `deviceId` at `address` (a restarted worker). */
  connectAttention?(deviceId: string, address: string): Promise<void>;
  step(s: PrimaryStep): Promise<PrimaryStepReply>;
  free(seqs: number[]): Promise<void>;
  exportHead(seq: number, head: number): Promise<HeadKvExport>;
  importHead(seq: number, head: number, x: HeadKvExport): Promise<void>;
  dropHead(seq: number, head: number): Promise<void>;
  stats(): Promise<WorkerStats>;
}
