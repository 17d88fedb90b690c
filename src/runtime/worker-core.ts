// Owns: what one worker does, whatever carries its messages: a primary rank runs steps over its
// shard, any worker holds KV for the heads placed on it and computes their attention, frees,
// exports and imports KV for migrations, and reports its state. Must not: do I/O (the worker
// process and the in-process cluster wrap it).

import type { LoadedModel } from '../model/weights.js';
import { HetisError } from '../util/errors.js';
import type { TokenBatch } from './batch.js';
import type { PrimaryStep, PrimaryStepReply, WorkerAssignment, WorkerStats } from './cluster-types.js';
import { HeadKv, type HeadKvExport } from './head-kv.js';
import { AttentionScratch, attendPacked, packedLength, type AttentionItem } from './head-attention.js';
import type { MatmulKernels } from './kernels/types.js';
import { PrimaryRunner, type AllReduce, type RemoteAttention } from './primary.js';
import { kvHeadsOfRank, shardModel } from './shard.js';
import { draw } from './step-sampling.js';
import { EMULATION_WAIT_SLACK_MS } from './local-devices.js';
import { gcStats } from '../util/gc-stats.js';
import { blockFor } from '../util/block.js';


/** Connections a worker needs, made by whoever hosts it. */
export interface WorkerLinks {
  /** Attention devices by id (primaries only). */
  remotes: ReadonlyMap<string, RemoteAttention>;
  /** The stage's all-reduce (tensor-parallel primaries only). */
  allReduce?: AllReduce;
}

export class WorkerCore {
  readonly store: HeadKv;
  private readonly runner: PrimaryRunner | undefined;
  private readonly scratch = new AttentionScratch();
  private readonly group: number;

  /** `model`: the whole model (primaries; undefined for attention workers). */
  constructor(readonly a: WorkerAssignment, model: LoadedModel | undefined, readonly kernels: MatmulKernels, private readonly links: WorkerLinks = { remotes: new Map() }) {
    gcStats(); // from now on, this process's collections are counted (stats())
    const spec = a.spec;
    this.group = spec.nHeads / spec.nKvHeads;
    this.store = new HeadKv(a.kv.layers, spec.headDim, a.kv.blockSize, a.kv.capacityBlocks);
    if (a.primary !== undefined) {
      if (model === undefined) throw new HetisError('internal', `${a.deviceId}: a primary needs the model's weights`);
      const p = a.primary;
      const shard = shardModel(model, { layers: p.layers, rank: p.rank, size: p.size });
      this.runner = new PrimaryRunner(shard, spec, kernels, {
        layers: p.layers, heads: kvHeadsOfRank(spec, p.rank, p.size), embed: p.stage === 0,
        lmHead: p.stage === p.stages - 1 && p.rank === 0, store: this.store,
        ...(links.allReduce !== undefined ? { allReduce: links.allReduce } : {}),
      });
    }
  }

  /** One step of this primary rank (its stage's layers). */
  async step(s: PrimaryStep): Promise<PrimaryStepReply> {
    if (this.runner === undefined) throw new HetisError('bad_input', `${this.a.deviceId} is not a primary: it runs no steps`);
    const batch: TokenBatch = { n: s.tokens.length, tokens: s.tokens, seqs: s.seqs, positions: s.positions };
    const self = this.a.deviceId;
    const sequences = s.sequences.map((q) => ({ ...q, owners: q.owners.map((o) => (o === self ? 'local' : o)) }));
    const r = await this.runner.step(batch, sequences, this.links.remotes, s.x, s.logitRows);
    if (r.logits === undefined) return { x: r.x, timing: r.timing };
    const t0 = performance.now();
    const vocab = this.a.spec.vocabSize;
    const tokens = Int32Array.from(s.logitRows, (row, i) => draw(r.logits!.subarray(i * vocab, (i + 1) * vocab), s.sampling[i] ?? undefined, s.positions[row]! + 1));
    r.timing.dense += (performance.now() - t0) / 1000;
    return { x: new Float32Array(0), tokens, timing: r.timing }; // the last stage: nobody needs x
  }

  /** Attention for heads held here (an attention worker's one job). */
  async attend(layer: number, items: AttentionItem[], q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
    const hd = this.a.spec.headDim;
    if (q.length !== packedLength(items, this.group * hd) || k.length !== packedLength(items, hd) || v.length !== k.length) {
      throw new HetisError('bad_input', `attend: tensor sizes ${q.length}/${k.length}/${v.length} do not match the items`);
    }
    const t0 = performance.now();
    const out = new Float32Array(q.length);
    attendPacked(this.store, layer, this.group, items, q, k, v, out, this.scratch, this.kernels);
    const extra = (this.a.slowdown - 1) * (performance.now() - t0);
    // An emulated slow worker blocks after each attention call (blockFor: the time asked plus a near-constant wake-up).
    if (extra > EMULATION_WAIT_SLACK_MS) blockFor(extra - EMULATION_WAIT_SLACK_MS);
    return out;
  }

  free(seqs: readonly number[]): void {
    for (const s of seqs) this.store.free(s);
  }

  exportHead(seq: number, head: number): HeadKvExport {
    return this.store.exportHead(seq, head);
  }

  importHead(seq: number, head: number, x: HeadKvExport): void {
    this.store.importHead(seq, head, x);
  }

  dropHead(seq: number, head: number): void {
    this.store.drop(seq, head);
  }

  stats(): WorkerStats {
    return {
      deviceId: this.a.deviceId, pid: process.pid, heads: this.store.headCount(), usedBlocks: this.store.usedBlocks(),
      capacityBlocks: this.store.capacityBlocks, rssBytes: process.memoryUsage().rss, gc: gcStats(),
    };
  }
}
