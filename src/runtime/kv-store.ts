// Owns: the KV cache of a chosen subset of KV heads, for every layer and every sequence that
// has heads here. Must not: compute attention or decide which heads live here.

import { assert, HetisError } from '../util/errors.js';
import { copyFloats } from './kernels/ops.js';

/** Capacity (positions) of a new sequence's buffers; doubled as it grows. */
const INITIAL_CAPACITY = 64;

interface SeqKv {
  /** Positions written (rows 0 .. length-1 of every layer and head are valid after a full step). */
  length: number;
  capacity: number;
  /** Index layer * nLocal + localHead -> [capacity, headDim]. */
  k: Float32Array[];
  v: Float32Array[];
}

/**
 * K and V for the KV heads in `heads` (global head ids, ascending), per sequence, per layer,
 * one contiguous [positions, headDim] buffer per (sequence, layer, head).
 */
export class HeadKvStore {
  readonly heads: readonly number[];
  private readonly localIndex = new Map<number, number>();
  private readonly seqs = new Map<number, SeqKv>();

  constructor(readonly nLayers: number, readonly headDim: number, heads: readonly number[]) {
    const sorted = [...heads].sort((a, b) => a - b);
    sorted.forEach((h, i) => {
      assert(Number.isInteger(h) && h >= 0, `KV head id must be a non-negative integer, got ${h}`);
      assert(!this.localIndex.has(h), `KV head ${h} listed twice`);
      this.localIndex.set(h, i);
    });
    this.heads = sorted;
  }

  /** Position of global head `head` in this store's order. */
  local(head: number): number {
    const i = this.localIndex.get(head);
    assert(i !== undefined, `KV head ${head} is not held by this store`);
    return i;
  }

  length(seq: number): number {
    return this.seqs.get(seq)?.length ?? 0;
  }

  has(seq: number): boolean {
    return this.seqs.has(seq);
  }

  sequences(): number[] {
    return [...this.seqs.keys()];
  }

  /**
   * Writes one position's k and v (headDim floats each, at kOff / vOff) for local head `li` of
   * `layer`. Positions are appended in order: pos <= length(seq).
   */
  write(seq: number, layer: number, li: number, pos: number, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    const s = this.entry(seq, pos + 1);
    // (Built only when it fails: this runs for every head, layer and token.)
    if (pos > s.length) throw new HetisError('internal', `KV write at position ${pos} leaves a gap (sequence ${seq} has ${s.length})`);
    const hd = this.headDim;
    const idx = layer * this.heads.length + li;
    copyFloats(s.k[idx]!, pos * hd, k, kOff, hd);
    copyFloats(s.v[idx]!, pos * hd, v, vOff, hd);
    if (pos + 1 > s.length) s.length = pos + 1;
  }

  /** K and V buffers of (seq, layer, local head): rows 0 .. length-1 are valid. */
  buffers(seq: number, layer: number, li: number): { k: Float32Array; v: Float32Array } {
    const s = this.seqs.get(seq);
    if (s === undefined) throw new HetisError('internal', `sequence ${seq} has no KV here`);
    const idx = layer * this.heads.length + li;
    return { k: s.k[idx]!, v: s.v[idx]! };
  }

  /** Drops positions >= length (for recompute or rollback). */
  truncate(seq: number, length: number): void {
    const s = this.seqs.get(seq);
    if (s !== undefined && length < s.length) s.length = Math.max(0, length);
  }

  free(seq: number): void {
    this.seqs.delete(seq);
  }

  /** Bytes of KV actually written (length, not capacity), for accounting. */
  bytesUsed(): number {
    let rows = 0;
    for (const s of this.seqs.values()) rows += s.length;
    return rows * this.nLayers * this.heads.length * this.headDim * 2 * 4;
  }

  private entry(seq: number, needed: number): SeqKv {
    let s = this.seqs.get(seq);
    const n = this.nLayers * this.heads.length;
    if (s === undefined) {
      const cap = Math.max(INITIAL_CAPACITY, needed);
      s = { length: 0, capacity: cap, k: [], v: [] };
      for (let i = 0; i < n; i++) {
        s.k.push(new Float32Array(cap * this.headDim));
        s.v.push(new Float32Array(cap * this.headDim));
      }
      this.seqs.set(seq, s);
    } else if (needed > s.capacity) {
      let cap = s.capacity;
      while (cap < needed) cap *= 2;
      for (let i = 0; i < n; i++) {
        const k = new Float32Array(cap * this.headDim);
        k.set(s.k[i]!);
        s.k[i] = k;
        const v = new Float32Array(cap * this.headDim);
        v.set(s.v[i]!);
        s.v[i] = v;
      }
      s.capacity = cap;
    }
    return s;
  }
}
