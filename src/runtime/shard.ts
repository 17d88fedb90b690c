// Owns: cutting a loaded model into the part one primary rank holds: a pipeline stage's layers
// and, with tensor parallelism, the rank's slice of heads (Q/K/V rows, output-projection
// columns) and of the MLP (gate/up rows, down columns). Must not: compute.

import type { LayerWeights, LoadedModel } from '../model/weights.js';
import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';

export interface ShardSpec {
  /** Layers [start, end) of this stage. */
  layers: [number, number];
  /** Tensor-parallel rank and group size. */
  rank: number;
  size: number;
}

/** KV heads [start, end) a rank of `size` computes (query heads follow: group per KV head). */
export function kvHeadsOfRank(spec: ModelSpec, rank: number, size: number): [number, number] {
  const per = spec.nKvHeads / size;
  return [rank * per, (rank + 1) * per];
}

/** Why `spec` cannot be split `size` ways, or undefined when it can. */
export function shardProblem(spec: ModelSpec, s: ShardSpec): string | undefined {
  if (!(Number.isInteger(s.size) && s.size >= 1)) return `tensor-parallel size must be a positive integer, got ${s.size}`;
  if (!(Number.isInteger(s.rank) && s.rank >= 0 && s.rank < s.size)) return `rank ${s.rank} is outside 0..${s.size - 1}`;
  if (spec.nKvHeads % s.size !== 0) return `${spec.nKvHeads} KV heads do not split ${s.size} ways`;
  if (spec.ffnDim % s.size !== 0) return `MLP width ${spec.ffnDim} does not split ${s.size} ways`;
  const [a, b] = s.layers;
  if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b > a && b <= spec.nLayers)) return `layers [${a}, ${b}) are not a range of 0..${spec.nLayers}`;
  return undefined;
}

const EMPTY = new Float32Array(0);

/**
 * The rank's model: a spec with its local head and MLP counts, and weights for its layers only
 * (other layers hold empty arrays). Row slices share memory with the full model; column slices
 * (wo, wDown) are copies.
 */
export function shardModel(model: LoadedModel, s: ShardSpec): LoadedModel {
  const problem = shardProblem(model.spec, s);
  if (problem !== undefined) throw new HetisError('bad_input', `${model.source}: ${problem}`);
  const spec = model.spec;
  const T = s.size;
  const hd = spec.headDim;
  const [kv0, kv1] = kvHeadsOfRank(spec, s.rank, T);
  const group = spec.nHeads / spec.nKvHeads;
  const q0 = kv0 * group * hd, q1 = kv1 * group * hd;
  const f0 = (spec.ffnDim / T) * s.rank, f1 = f0 + spec.ffnDim / T;
  const rows = (w: Float32Array, r0: number, r1: number, cols: number): Float32Array => w.subarray(r0 * cols, r1 * cols);
  const columns = (w: Float32Array, nRows: number, nCols: number, c0: number, c1: number): Float32Array => {
    if (c0 === 0 && c1 === nCols) return w;
    const out = new Float32Array(nRows * (c1 - c0));
    for (let r = 0; r < nRows; r++) out.set(w.subarray(r * nCols + c0, r * nCols + c1), r * (c1 - c0));
    return out;
  };
  const layers: LayerWeights[] = model.weights.layers.map((L, l) => {
    if (l < s.layers[0] || l >= s.layers[1]) {
      return { attnNorm: EMPTY, wq: EMPTY, wk: EMPTY, wv: EMPTY, wo: EMPTY, ffnNorm: EMPTY, wGate: EMPTY, wDown: EMPTY, wUp: EMPTY };
    }
    return {
      attnNorm: L.attnNorm,
      wq: rows(L.wq, q0, q1, spec.dim),
      wk: rows(L.wk, kv0 * hd, kv1 * hd, spec.dim),
      wv: rows(L.wv, kv0 * hd, kv1 * hd, spec.dim),
      wo: columns(L.wo, spec.dim, spec.nHeads * hd, q0, q1),
      ffnNorm: L.ffnNorm,
      wGate: rows(L.wGate, f0, f1, spec.dim),
      wUp: rows(L.wUp, f0, f1, spec.dim),
      wDown: columns(L.wDown, spec.dim, spec.ffnDim, f0, f1),
    };
  });
  return {
    spec: { ...spec, nHeads: spec.nHeads / T, nKvHeads: spec.nKvHeads / T, ffnDim: spec.ffnDim / T },
    weights: { ...model.weights, layers },
    source: model.source,
  };
}
