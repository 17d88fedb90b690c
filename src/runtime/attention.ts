// Owns: the attention piece: decode/prefill attention for any subset of KV heads over a store
// holding only those heads, and the gather/scatter between full and per-subset head layouts.
// Must not: touch weights (that is the dense pieces' job).

import { copyFloats, softmaxCausalRows } from './kernels/ops.js';
import type { MatmulKernels } from './kernels/types.js';
import type { HeadKvStore } from './kv-store.js';
import type { TokenBatch } from './batch.js';

/**
 * Attention for the KV heads of `store`, layer `layer`, every token of `batch`.
 * Layouts are compact over the store's heads, in store.heads order (li = local index):
 *   q:   [n, nLocal * group * headDim]  (query heads li*group .. li*group+group-1)
 *   k,v: [n, nLocal * headDim]          (new keys/values of this step, already RoPE'd)
 *   out: [n, nLocal * group * headDim]
 * First appends every token's k/v to the store, then attends token t over positions
 * 0 .. positions[t] of its sequence (causal within a prefill chunk). Consecutive tokens of one
 * sequence form a run (a prefill chunk, or a single decode token) handled with matrix products.
 */
export function attendHeads(
  store: HeadKvStore, layer: number, group: number, batch: TokenBatch,
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, scratch: AttentionScratch,
  kernels: MatmulKernels,
): void {
  const hd = store.headDim;
  const nLocal = store.heads.length;
  const kvWidth = nLocal * hd;
  for (let t = 0; t < batch.n; t++) {
    const seq = batch.seqs[t]!;
    const pos = batch.positions[t]!;
    for (let li = 0; li < nLocal; li++) {
      const off = t * kvWidth + li * hd;
      store.write(seq, layer, li, pos, k, off, v, off);
    }
  }
  let t = 0;
  while (t < batch.n) {
    const seq = batch.seqs[t]!;
    let end = t + 1;
    while (end < batch.n && batch.seqs[end] === seq && batch.positions[end] === batch.positions[end - 1]! + 1) end++;
    attendRun(store, layer, group, seq, batch.positions[t]!, t, end - t, q, out, scratch, kernels);
    t = end;
  }
}

/** Attention of a run of c consecutive tokens of one sequence (rows t0 .. t0+c-1), head by head. */
function attendRun(
  store: HeadKvStore, layer: number, group: number, seq: number, p0: number, t0: number, c: number,
  q: Float32Array, out: Float32Array, scratch: AttentionScratch, kernels: MatmulKernels,
): void {
  const block = group * store.headDim; // one KV head's query heads in one token row
  const qWidth = store.heads.length * block;
  for (let li = 0; li < store.heads.length; li++) {
    const { k, v } = store.buffers(seq, layer, li);
    attendHeadRun(k, v, group, store.headDim, p0, c, q, out, t0 * qWidth + li * block, qWidth, scratch, kernels);
  }
}

/**
 * Attention of c consecutive tokens (positions p0 .. p0+c-1) for ONE KV head whose cache rows
 * 0 .. p0+c-1 are in kc, vc ([>= p0+c, hd]). The head's query block (group*hd floats) of token
 * i is at q[qOff + i*qStride]; the output goes to the same place in out. With len = p0 + c:
 *   Q [c*group, hd] (gathered) · K[0..len)ᵀ -> S [c*group, len]; causal softmax;
 *   S · V[0..len) -> O [c*group, hd] (scattered back).
 */
export function attendHeadRun(
  kc: Float32Array, vc: Float32Array, group: number, hd: number, p0: number, c: number,
  q: Float32Array, out: Float32Array, qOff: number, qStride: number, scratch: AttentionScratch, kernels: MatmulKernels,
): void {
  const block = group * hd;
  const len = p0 + c;
  const rows = c * group;
  scratch.fit(rows, len, hd);
  const { qs, s, o } = scratch;
  for (let i = 0; i < c; i++) copyFloats(qs, i * block, q, qOff + i * qStride, block);
  kernels.matmul(s, qs, kc, rows, hd, len); // K buffer rows beyond len are not read
  softmaxCausalRows(s, c, group, len, p0, hd);
  kernels.matmulNN(o, s, vc, rows, len, hd);
  for (let i = 0; i < c; i++) copyFloats(out, qOff + i * qStride, o, i * block, block);
}

/** Buffers that grow to the largest run seen; no allocation in the steady state (not even a result object). */
export class AttentionScratch {
  /** [rows, hd]: the run's gathered queries. */
  qs: Float32Array = new Float32Array(0);
  /** [rows, len]: its scores. */
  s: Float32Array = new Float32Array(0);
  /** [rows, hd]: its output before it is scattered back. */
  o: Float32Array = new Float32Array(0);

  /** Grows the buffers to hold a run of `rows` query rows over `len` positions (longer buffers: only the prefix is used). */
  fit(rows: number, len: number, hd: number): void {
    if (rows * hd > this.qs.length) this.qs = new Float32Array(Math.max(rows * hd, this.qs.length * 2));
    if (rows * len > this.s.length) this.s = new Float32Array(Math.max(rows * len, this.s.length * 2));
    if (rows * hd > this.o.length) this.o = new Float32Array(Math.max(rows * hd, this.o.length * 2));
  }
}

/**
 * Copies the columns of `heads` (each `width` floats wide, at head*width in a row of
 * `fullWidth`) from full [n, fullWidth] into compact [n, heads.length * width].
 */
export function gatherHeads(full: Float32Array, fullWidth: number, heads: readonly number[], width: number, n: number, compact: Float32Array): void {
  const cw = heads.length * width;
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < heads.length; i++) {
      copyFloats(compact, t * cw + i * width, full, t * fullWidth + heads[i]! * width, width);
    }
  }
}

/** Inverse of gatherHeads: writes compact columns back into their places in full. */
export function scatterHeads(compact: Float32Array, fullWidth: number, heads: readonly number[], width: number, n: number, full: Float32Array): void {
  const cw = heads.length * width;
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < heads.length; i++) {
      copyFloats(full, t * fullWidth + heads[i]! * width, compact, t * cw + i * width, width);
    }
  }
}
