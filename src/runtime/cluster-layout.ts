// Owns: turning a description of a local or hand-started cluster (one primary device with its
// TP x PP ranks, attention devices with their KV capacity) into each worker's assignment and the
// engine's devices. Must not: start or connect to anything.

import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';
import type { WorkerAssignment } from './cluster-types.js';
import { layersOfStage, type LocalDevice } from './local-devices.js';
import { shardProblem } from './shard.js';

/** The cluster as a user describes it. */
export interface ClusterLayout {
  primary: {
    id: string;
    /** Tensor-parallel ranks per stage and pipeline stages (ranks = tp x stages workers). */
    tp: number;
    stages: number;
    /** KV bytes the primary device holds (split over its ranks by head and layer). */
    kvCapacityBytes: number;
    /** Layers [start, end) of each stage (default: as even as possible). */
    stageLayers?: [number, number][];
  };
  attention: { id: string; kvCapacityBytes: number; slowdown?: number }[];
  blockSize: number;
}

/** KV bytes of one position of one KV head over `layers` layers (F32 K and V). */
export function kvBytesPerHeadPosition(spec: ModelSpec, layers: number): number {
  return 2 * spec.headDim * layers * 4;
}

/** The engine's view: one device per entry (the primary device once, whatever its ranks). */
export function layoutDevices(layout: ClusterLayout): LocalDevice[] {
  return [
    { id: layout.primary.id, primary: true, kvCapacityBytes: layout.primary.kvCapacityBytes },
    ...layout.attention.map((a) => ({ id: a.id, primary: false, kvCapacityBytes: a.kvCapacityBytes, ...(a.slowdown !== undefined ? { slowdown: a.slowdown } : {}) })),
  ];
}

/**
 * Assignments of every worker: the primary's ranks first (stage by stage, rank order), then
 * the attention workers. `addresses` (same order) fill in the all-reduce and attention peers;
 * in-process clusters pass none.
 */
export function layoutAssignments(spec: ModelSpec, layout: ClusterLayout, model: { path?: string; tokenizer?: string } = {}, addresses: readonly string[] = []): WorkerAssignment[] {
  checkLayout(spec, layout);
  const { tp, stages } = layout.primary;
  const blocks = (bytes: number): number => Math.floor(bytes / (kvBytesPerHeadPosition(spec, spec.nLayers) * layout.blockSize));
  const nPrimary = tp * stages;
  const attentionPeers: Record<string, string> = {};
  layout.attention.forEach((a, i) => { const addr = addresses[nPrimary + i]; if (addr !== undefined) attentionPeers[a.id] = addr; });
  const out: WorkerAssignment[] = [];
  for (let s = 0; s < stages; s++) {
    const layers = layout.primary.stageLayers?.[s] ?? layersOfStage(spec.nLayers, stages, s);
    const tpPeers = Array.from({ length: tp }, (_, r) => addresses[s * tp + r] ?? '');
    for (let r = 0; r < tp; r++) {
      out.push({
        deviceId: layout.primary.id, spec,
        ...(model.path !== undefined ? { modelPath: model.path } : {}),
        ...(model.tokenizer !== undefined ? { tokenizerPath: model.tokenizer } : {}),
        primary: { stage: s, stages, layers, rank: r, size: tp, tpPeers },
        kv: { layers, blockSize: layout.blockSize, capacityBlocks: blocks(layout.primary.kvCapacityBytes) },
        attentionPeers, slowdown: 1,
      });
    }
  }
  for (const a of layout.attention) {
    out.push({
      deviceId: a.id, spec, kv: { layers: [0, spec.nLayers], blockSize: layout.blockSize, capacityBlocks: blocks(a.kvCapacityBytes) },
      attentionPeers: {}, slowdown: a.slowdown ?? 1,
    });
  }
  return out;
}

function checkLayout(spec: ModelSpec, layout: ClusterLayout): void {
  const problems: string[] = [];
  const { tp, stages } = layout.primary;
  if (!(Number.isInteger(stages) && stages >= 1 && stages <= spec.nLayers)) problems.push(`pipeline stages must be an integer in 1..${spec.nLayers}, got ${stages}`);
  const p = shardProblem(spec, { layers: [0, spec.nLayers], rank: 0, size: tp });
  if (p !== undefined) problems.push(p);
  const ids = [layout.primary.id, ...layout.attention.map((a) => a.id)];
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined) problems.push(`device id '${dup}' is used twice`);
  for (const a of layout.attention) {
    if (!(a.kvCapacityBytes > 0)) problems.push(`${a.id}: KV capacity must be > 0 bytes`);
    if (a.slowdown !== undefined && !(a.slowdown >= 1)) problems.push(`${a.id}: slowdown must be >= 1, got ${a.slowdown}`);
  }
  if (!(layout.primary.kvCapacityBytes >= 0)) problems.push('primary KV capacity must be >= 0 bytes');
  const sl = layout.primary.stageLayers;
  if (sl !== undefined) {
    const contiguous = sl.length === stages && sl.every((r, i) => r[1] > r[0] && r[0] === (i === 0 ? 0 : sl[i - 1]![1])) && sl[sl.length - 1]?.[1] === spec.nLayers;
    if (!contiguous) problems.push(`stage layers ${JSON.stringify(sl)} do not cover layers 0..${spec.nLayers} in ${stages} contiguous ranges`);
  }
  if (!(Number.isInteger(layout.blockSize) && layout.blockSize >= 1)) problems.push(`block size must be a positive integer, got ${layout.blockSize}`);
  if (problems.length > 0) throw new HetisError('bad_input', `cluster layout: ${problems.join('; ')}`);
}
