// Owns: a device's KV cache at the granularity the dispatcher places it: one (sequence, KV
// head) at a time, for the layers this device serves, with capacity counted in blocks of
// positions (the engine's KV manager decides; this store refuses to go beyond it), and the
// export/import of one head's KV for migrations. Must not: compute attention or decide
// placement.

import { assert, HetisError } from '../util/errors.js';
import { copyFloats } from './kernels/ops.js';

/** Positions of a new head's buffers; doubled as it grows. */
const INITIAL_CAPACITY = 64;

interface HeadEntry {
  /** Positions written (the furthest layer's; every layer catches up within a step). */
  length: number;
  capacity: number;
  /** Per served layer (index layer - layers[0]): [capacity, headDim]. */
  k: Float32Array[];
  v: Float32Array[];
}

/** One head's KV as it travels in a migration: layers [layers[0], layers[1]), positions 0..length-1. */
export interface HeadKvExport {
  length: number;
  layers: [number, number];
  /** [layers, 2 (K then V), length, headDim]. */
  data: Float32Array;
}

export class HeadKv {
  private readonly seqs = new Map<number, Map<number, HeadEntry>>();
  private used = 0;

  /**
   * @param layers the layers [start, end) this device holds KV for
   * @param capacityBlocks blocks of `blockSize` positions (of every served layer) it may hold
   */
  constructor(readonly layers: readonly [number, number], readonly headDim: number, readonly blockSize: number, readonly capacityBlocks: number) {
    assert(layers[1] > layers[0], `empty layer range [${layers[0]}, ${layers[1]})`);
  }

  get nLayers(): number {
    return this.layers[1] - this.layers[0];
  }

  usedBlocks(): number {
    return this.used;
  }

  /** (sequence, head) pairs held. */
  headCount(): number {
    let n = 0;
    for (const m of this.seqs.values()) n += m.size;
    return n;
  }

  length(seq: number, head: number): number {
    return this.seqs.get(seq)?.get(head)?.length ?? 0;
  }

  has(seq: number, head: number): boolean {
    return this.seqs.get(seq)?.has(head) ?? false;
  }

  /** Heads of `seq` held here. */
  heads(seq: number): number[] {
    return [...(this.seqs.get(seq)?.keys() ?? [])];
  }

  /**
   * Writes k and v (headDim floats at kOff / vOff) of position `pos` of (seq, head) in `layer`.
   * Positions are appended in order in each layer (pos <= length).
   */
  write(seq: number, head: number, layer: number, pos: number, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    const e = this.entry(seq, head, pos + 1);
    // (Checks on this path build their messages only when they fail: it runs for every head, layer and token.)
    if (pos > e.length) throw new HetisError('internal', `KV write at position ${pos} leaves a gap (sequence ${seq} head ${head} has ${e.length})`);
    const hd = this.headDim;
    const li = this.layerIndex(layer);
    copyFloats(e.k[li]!, pos * hd, k, kOff, hd);
    copyFloats(e.v[li]!, pos * hd, v, vOff, hd);
    if (pos + 1 > e.length) this.setLength(e, pos + 1);
  }

  /** K and V of (seq, head, layer): rows 0 .. length-1 valid. */
  buffers(seq: number, head: number, layer: number): { k: Float32Array; v: Float32Array } {
    const e = this.seqs.get(seq)?.get(head);
    if (e === undefined) throw new HetisError('internal', `sequence ${seq} head ${head} has no KV here`);
    const li = this.layerIndex(layer);
    return { k: e.k[li]!, v: e.v[li]! };
  }

  free(seq: number): void {
    const m = this.seqs.get(seq);
    if (m === undefined) return;
    for (const e of m.values()) this.used -= this.blocks(e.length);
    this.seqs.delete(seq);
  }

  /** Drops one head of a sequence (after it migrated away). */
  drop(seq: number, head: number): void {
    const m = this.seqs.get(seq);
    const e = m?.get(head);
    if (m === undefined || e === undefined) return;
    this.used -= this.blocks(e.length);
    m.delete(head);
    if (m.size === 0) this.seqs.delete(seq);
  }

  exportHead(seq: number, head: number): HeadKvExport {
    const e = this.seqs.get(seq)?.get(head);
    if (e === undefined) throw new HetisError('bad_input', `sequence ${seq} head ${head} has no KV here to export`);
    const hd = this.headDim, len = e.length, L = this.nLayers;
    const data = new Float32Array(L * 2 * len * hd);
    for (let l = 0; l < L; l++) {
      data.set(e.k[l]!.subarray(0, len * hd), (l * 2) * len * hd);
      data.set(e.v[l]!.subarray(0, len * hd), (l * 2 + 1) * len * hd);
    }
    return { length: len, layers: [this.layers[0], this.layers[1]], data };
  }

  /**
   * Takes the layers of `x` this store serves (x may cover more, or fewer when several stages
   * each send theirs), replacing what was held for (seq, head) in those layers.
   */
  importHead(seq: number, head: number, x: HeadKvExport): void {
    const hd = this.headDim, len = x.length;
    if (x.data.length !== (x.layers[1] - x.layers[0]) * 2 * len * hd) {
      throw new HetisError('bad_input', `KV import of sequence ${seq} head ${head}: ${x.data.length} floats for ${len} positions of layers [${x.layers[0]}, ${x.layers[1]})`);
    }
    const e = this.entry(seq, head, len);
    for (let l = Math.max(x.layers[0], this.layers[0]); l < Math.min(x.layers[1], this.layers[1]); l++) {
      const src = l - x.layers[0], li = l - this.layers[0];
      e.k[li]!.set(x.data.subarray((src * 2) * len * hd, (src * 2 + 1) * len * hd));
      e.v[li]!.set(x.data.subarray((src * 2 + 1) * len * hd, (src * 2 + 2) * len * hd));
    }
    if (len > e.length) this.setLength(e, len);
  }

  private layerIndex(layer: number): number {
    if (!(layer >= this.layers[0] && layer < this.layers[1])) throw new HetisError('internal', `layer ${layer} is not held here ([${this.layers[0]}, ${this.layers[1]}))`);
    return layer - this.layers[0];
  }

  private blocks(length: number): number {
    return Math.ceil(length / this.blockSize);
  }

  private setLength(e: HeadEntry, length: number): void {
    const more = this.blocks(length) - this.blocks(e.length);
    if (more > 0 && this.used + more > this.capacityBlocks) {
      throw new HetisError('bad_input', `KV capacity exceeded: ${this.used + more} blocks needed, ${this.capacityBlocks} held`);
    }
    this.used += more;
    e.length = length;
  }

  private entry(seq: number, head: number, needed: number): HeadEntry {
    let m = this.seqs.get(seq);
    if (m === undefined) { m = new Map(); this.seqs.set(seq, m); }
    let e = m.get(head);
    const hd = this.headDim, L = this.nLayers;
    if (e === undefined) {
      const cap = Math.max(INITIAL_CAPACITY, needed);
      e = { length: 0, capacity: cap, k: [], v: [] };
      for (let l = 0; l < L; l++) { e.k.push(new Float32Array(cap * hd)); e.v.push(new Float32Array(cap * hd)); }
      m.set(head, e);
    } else if (needed > e.capacity) {
      let cap = e.capacity;
      while (cap < needed) cap *= 2;
      for (let l = 0; l < L; l++) {
        const k = new Float32Array(cap * hd); k.set(e.k[l]!); e.k[l] = k;
        const v = new Float32Array(cap * hd); v.set(e.v[l]!); e.v[l] = v;
      }
      e.capacity = cap;
    }
    return e;
  }
}
