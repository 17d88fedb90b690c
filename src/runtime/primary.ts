// Owns: one engine step on one primary rank, layer by layer: dense pre-attention for the rank's
// heads, attention sent to each head's owner (its own store for heads it holds, a remote device
// otherwise) and gathered back, the output projection and MLP with all-reduces across the
// tensor-parallel group, and the LM head on the last stage. Must not: know the transport (owners
// and the all-reduce are interfaces) or sample.

import type { LoadedModel } from '../model/weights.js';
import type { ModelSpec } from '../model/spec.js';
import { assert } from '../util/errors.js';
import type { TokenBatch } from './batch.js';
import { DenseRunner } from './dense.js';
import type { HeadKv } from './head-kv.js';
import { AttentionScratch, attendPacked, packHeads, packedLength, unpackHeads, type AttentionItem } from './head-attention.js';
import type { MatmulKernels } from './kernels/types.js';

/** A device that computes attention for heads it holds (an attention worker, seen from a primary). */
export interface RemoteAttention {
  /** Appends k, v and returns the attention output, all packed as AttentionItem describes. */
  attend(layer: number, items: AttentionItem[], q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array>;
}

/** Sum across the tensor-parallel group, in rank order on every rank (same bits everywhere). */
export interface AllReduce {
  /** buf[0..length) becomes the sum over ranks; `tag` names the reduction within the step. */
  sum(buf: Float32Array, length: number, tag: string): Promise<void>;
}

/** One sequence of the step as the primaries see it. */
export interface StepSequence {
  seq: number;
  start: number;
  count: number;
  /** First batch row of its tokens. */
  row: number;
  /** Owner key of each KV head (global head id -> key; 'local' = the primaries). */
  owners: readonly string[];
}

/** Attention work of one owner for this rank: its items and their first batch rows. */
export interface Route {
  owner: string;
  items: AttentionItem[];
  rows: number[];
}

/** Groups the rank's heads [h0, h1) of every sequence by owner. */
export function routesFor(seqs: readonly StepSequence[], h0: number, h1: number): Route[] {
  const byOwner = new Map<string, Route>();
  for (const s of seqs) {
    const heads = new Map<string, number[]>();
    for (let h = h0; h < h1; h++) {
      const o = s.owners[h]!;
      let list = heads.get(o);
      if (list === undefined) { list = []; heads.set(o, list); }
      list.push(h);
    }
    for (const [owner, hs] of heads) {
      let r = byOwner.get(owner);
      if (r === undefined) { r = { owner, items: [], rows: [] }; byOwner.set(owner, r); }
      r.items.push({ seq: s.seq, start: s.start, count: s.count, heads: hs });
      r.rows.push(s.row);
    }
  }
  return [...byOwner.values()];
}

export interface PrimaryOptions {
  /** Layers [start, end) of this stage. */
  layers: [number, number];
  /** KV heads [start, end) this rank computes. */
  heads: [number, number];
  /** First stage: embeds tokens. */
  embed: boolean;
  /** Last stage's rank 0: computes logits. */
  lmHead: boolean;
  /** KV of the heads the primaries hold, for this stage's layers. */
  store: HeadKv;
  allReduce?: AllReduce;
}

/** Seconds per part of one step on this rank. */
export interface PrimaryTiming {
  dense: number;
  attention: number;
  wait: number;
  allreduce: number;
}

export class PrimaryRunner {
  readonly dense: DenseRunner;
  private readonly full: ModelSpec;
  private readonly scratch = new AttentionScratch();
  private q = new Float32Array(0);
  private k = new Float32Array(0);
  private v = new Float32Array(0);
  private attn = new Float32Array(0);

  /** `shard` is the rank's model (shardModel); `full` the whole model's spec. */
  constructor(shard: LoadedModel, full: ModelSpec, readonly kernels: MatmulKernels, readonly o: PrimaryOptions) {
    this.dense = new DenseRunner(shard, kernels);
    this.full = full;
  }

  /**
   * Runs the stage's layers over `batch`. x: [n, dim] hidden states from the previous stage
   * (ignored on the first stage). Returns the hidden states and, on the LM-head rank, logits
   * [logitRows.length, vocab].
   */
  async step(batch: TokenBatch, seqs: readonly StepSequence[], remotes: ReadonlyMap<string, RemoteAttention>, xIn: Float32Array | undefined, logitRows: Int32Array): Promise<{ x: Float32Array; logits?: Float32Array; timing: PrimaryTiming }> {
    const spec = this.dense.spec; // local head and MLP counts
    const n = batch.n;
    const hd = spec.headDim;
    const group = this.full.nHeads / this.full.nKvHeads;
    const block = group * hd;
    const qw = spec.nHeads * hd, kw = spec.nKvHeads * hd;
    this.ensure(n, qw, kw);
    const timing: PrimaryTiming = { dense: 0, attention: 0, wait: 0, allreduce: 0 };
    let t = performance.now();
    const lap = (part: keyof PrimaryTiming): void => { const now = performance.now(); timing[part] += (now - t) / 1000; t = now; };
    const x = new Float32Array(n * spec.dim);
    if (this.o.embed) this.dense.embed(batch.tokens, n, x);
    else { assert(xIn !== undefined && xIn.length >= n * spec.dim, 'a later pipeline stage needs the hidden states'); x.set(xIn.subarray(0, n * spec.dim)); }
    const [h0, h1] = this.o.heads;
    const routes = routesFor(seqs, h0, h1);
    for (const r of routes) assert(r.owner === 'local' || remotes.has(r.owner), `no connection to attention device ${r.owner}`);
    // The heads this rank attends itself are the same in every layer: their packed buffers are
    // made once per step (a remote owner's are fresh each layer: they are in flight until it answers).
    const localRoute = routes.find((r) => r.owner === 'local');
    const localBufs = localRoute === undefined ? undefined : (() => {
      const q = new Float32Array(packedLength(localRoute.items, block));
      const k = new Float32Array(packedLength(localRoute.items, hd));
      return { q, k, v: new Float32Array(k.length), out: new Float32Array(q.length) };
    })();
    for (let l = this.o.layers[0]; l < this.o.layers[1]; l++) {
      this.dense.preAttention(l, x, batch.positions, n, this.q, this.k, this.v);
      lap('dense');
      const pending: { route: Route; out: Promise<Float32Array> }[] = [];
      let local: Route | undefined;
      for (const r of routes) {
        if (r.owner === 'local') { local = r; continue; }
        const q = new Float32Array(packedLength(r.items, block));
        const k = new Float32Array(packedLength(r.items, hd));
        const v = new Float32Array(k.length);
        packHeads(this.q, qw, h0, block, r.items, r.rows, q);
        packHeads(this.k, kw, h0, hd, r.items, r.rows, k);
        packHeads(this.v, kw, h0, hd, r.items, r.rows, v);
        const out = remotes.get(r.owner)!.attend(l, r.items, q, k, v);
        out.catch(() => {}); // observed below; this keeps a rejection from going unhandled if local work throws first
        pending.push({ route: r, out });
      }
      if (local !== undefined) {
        const { q, k, v, out } = localBufs!;
        packHeads(this.q, qw, h0, block, local.items, local.rows, q);
        packHeads(this.k, kw, h0, hd, local.items, local.rows, k);
        packHeads(this.v, kw, h0, hd, local.items, local.rows, v);
        attendPacked(this.o.store, l, group, local.items, q, k, v, out, this.scratch, this.kernels);
        unpackHeads(out, qw, h0, block, local.items, local.rows, this.attn);
      }
      lap('attention');
      if (pending.length > 0) { // (every head here: nothing to wait for, nothing to allocate for it)
        // Wait for every owner even when one fails, so no rejection is left unobserved.
        const outs = await Promise.allSettled(pending.map((p) => p.out));
        const failed = outs.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        pending.forEach((p, i) => unpackHeads((outs[i] as PromiseFulfilledResult<Float32Array>).value, qw, h0, block, p.route.items, p.route.rows, this.attn));
      }
      lap('wait');
      await this.postAttention(l, x, n, lap);
    }
    if (!this.o.lmHead) return { x, timing };
    const logits = new Float32Array(logitRows.length * this.full.vocabSize);
    this.dense.logits(x, logitRows, logits);
    lap('dense');
    return { x, logits, timing };
  }

  /** x += Wo·attn and the MLP, with the two all-reduces of tensor parallelism. */
  private async postAttention(l: number, x: Float32Array, n: number, lap: (part: keyof PrimaryTiming) => void): Promise<void> {
    const d = this.dense;
    const ar = this.o.allReduce;
    const len = n * d.spec.dim;
    d.outProj(l, this.attn, n);
    if (ar !== undefined) { lap('dense'); await ar.sum(d.projection, len, `${l}/attn`); lap('allreduce'); }
    d.residual(x, n);
    d.postAttnNorm(l, x, n);
    d.mlpUp(l, n);
    d.act(n);
    d.mlpDown(l, n);
    if (ar !== undefined) { lap('dense'); await ar.sum(d.projection, len, `${l}/mlp`); lap('allreduce'); }
    d.residual(x, n);
    lap('dense');
  }

  private ensure(n: number, qw: number, kw: number): void {
    if (this.q.length >= n * qw) return;
    const r = Math.max(n, this.q.length / Math.max(1, qw) * 2);
    this.q = new Float32Array(r * qw);
    this.k = new Float32Array(r * kw);
    this.v = new Float32Array(r * kw);
    this.attn = new Float32Array(r * qw);
  }
}
