// Owns: attention for a packed list of (sequence, KV heads) items over a HeadKv store: what an
// attention worker (or a primary, for the heads it holds) runs for one layer of one step, and
// the packing of q/k/v between a primary's head columns and that wire layout. Must not: know
// where the items came from.

import type { MatmulKernels } from './kernels/types.js';
import { AttentionScratch, attendHeadRun } from './attention.js';
import { copyFloats } from './kernels/ops.js';
import type { HeadKv } from './head-kv.js';

/**
 * One sequence's part of an attention request: `count` consecutive positions from `start`, for
 * the KV heads in `heads` (global ids). Packed tensors hold the items one after another, each
 * as [count, heads.length, width] (width: group*headDim for q and the output, headDim for k, v).
 */
export interface AttentionItem {
  seq: number;
  start: number;
  count: number;
  heads: number[];
}

/** Floats of an item list in a packed tensor of `width` floats per (token, head). */
export function packedLength(items: readonly AttentionItem[], width: number): number {
  let n = 0;
  for (const it of items) n += it.count * it.heads.length * width;
  return n;
}

/**
 * Appends each item's new k, v to the store, then computes attention for every (token, head):
 * q, out packed with width group*hd; k, v packed with width hd.
 */
export function attendPacked(
  store: HeadKv, layer: number, group: number, items: readonly AttentionItem[],
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, scratch: AttentionScratch, kernels: MatmulKernels,
): void {
  const hd = store.headDim;
  const block = group * hd;
  let qBase = 0, kBase = 0;
  for (const it of items) {
    const nh = it.heads.length;
    for (let j = 0; j < nh; j++) {
      const head = it.heads[j]!;
      for (let i = 0; i < it.count; i++) {
        const off = kBase + (i * nh + j) * hd;
        store.write(it.seq, head, layer, it.start + i, k, off, v, off);
      }
      const { k: kc, v: vc } = store.buffers(it.seq, head, layer);
      attendHeadRun(kc, vc, group, hd, it.start, it.count, q, out, qBase + j * block, nh * block, scratch, kernels);
    }
    qBase += it.count * nh * block;
    kBase += it.count * nh * hd;
  }
}

/**
 * Copies every (token, head) block of the items between a primary's head-column buffer `full`
 * (head h of batch row r at r*fullWidth + (h - headBase)*width; `rows[i]` is the first batch row
 * of items[i]) and `packed` (the items' blocks one after another), into `packed` or out of it.
 */
function copyBlocks(
  items: readonly AttentionItem[], rows: readonly number[], fullWidth: number, headBase: number, width: number,
  full: Float32Array, packed: Float32Array, toPacked: boolean,
): void {
  let o = 0;
  for (let idx = 0; idx < items.length; idx++) {
    const it = items[idx]!;
    for (let i = 0; i < it.count; i++) {
      const r = (rows[idx]! + i) * fullWidth;
      for (const h of it.heads) {
        const f = r + (h - headBase) * width;
        if (toPacked) copyFloats(packed, o, full, f, width);
        else copyFloats(full, f, packed, o, width);
        o += width;
      }
    }
  }
}

/** Copies the items' (token, head) blocks of `full` ([n, fullWidth]) into the packed layout. */
export function packHeads(
  full: Float32Array, fullWidth: number, headBase: number, width: number,
  items: readonly AttentionItem[], rows: readonly number[], packed: Float32Array,
): void {
  copyBlocks(items, rows, fullWidth, headBase, width, full, packed, true);
}

/** Inverse of packHeads: writes packed (token, head) blocks back into `full`. */
export function unpackHeads(
  packed: Float32Array, fullWidth: number, headBase: number, width: number,
  items: readonly AttentionItem[], rows: readonly number[], full: Float32Array,
): void {
  copyBlocks(items, rows, fullWidth, headBase, width, full, packed, false);
}

export { AttentionScratch };
