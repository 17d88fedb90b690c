// Owns: timing the real forward pieces op by op: the dense ops of every layer and the LM head
// over a token grid (DenseRunner's own per-op methods, layers swept in forward order so weights
// come from memory as they do in a step), decode attention over (heads, context) points, and
// causal prefill attention per chunk size, both as a worker runs its heads (per-head KV in a
// HeadKv; q, k, v packed per head, attendPacked, the output unpacked). Must not: fit, write
// files or choose grids.

import type { AttentionPoint } from '../cost/profile-types.js';
import type { DenseOp } from '../cost/types.js';
import type { ModelSpec } from '../model/spec.js';
import { median } from '../util/fit.js';
import { createRng } from '../util/rng.js';
import type { DenseRunner } from './dense.js';
import { HeadKv } from './head-kv.js';
import { AttentionScratch, attendPacked, packedLength, packHeads, unpackHeads, type AttentionItem } from './head-attention.js';
import { blockFor } from '../util/block.js';

/** Ops of one layer in forward order, then the LM head. */
export const PROFILED_OPS = ['input_norm', 'qkv', 'rope', 'o', 'add', 'post_attn_norm', 'mlp_up', 'act', 'mlp_down', 'lm_head'] as const;
export type ProfiledOp = DenseOp | 'lm_head';

/** Seconds of one dense sweep's times (per layer, see denseSweep): every layer's ops, and the LM head unless `lmHead` is false. */
export function sweepSeconds(t: Readonly<Record<ProfiledOp, number>>, layers: number, lmHead = true): number {
  let layer = 0;
  for (const op of PROFILED_OPS) if (op !== 'lm_head') layer += t[op];
  return layer * layers + (lmHead ? t.lm_head : 0);
}

/**
 * A clock in seconds. 'wall': performance.now(). 'cpu': this process's CPU time (user + system,
 * microsecond resolution), which leaves out time the OS gave other processes: on a shared machine
 * it is what a dedicated core would see; it counts every thread, so it suits one-threaded kernels.
 * `overhead` is the mean cost of one reading, subtracted from each interval.
 */
export interface Clock {
  readonly kind: 'wall' | 'cpu';
  now(): number;
  readonly overhead: number;
}

export function makeClock(kind: 'wall' | 'cpu'): Clock {
  const now = kind === 'wall'
    ? (): number => performance.now() / 1000
    : (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const calls = 20000;
  now();
  const t0 = now();
  for (let i = 0; i < calls; i++) now();
  return { kind, now, overhead: (now() - t0) / (calls + 1) };
}

/**
 * How often to repeat a measurement: `warmup` untimed runs, then timed ones until there are at
 * least `min` and either `max` or `seconds` of measured time (so cheap points get more samples
 * and their medians shrug off short bursts of load from elsewhere).
 */
export interface Sampling {
  warmup: number;
  min: number;
  max: number;
  seconds: number;
  /**
   * Idle pause before each timed run, ms (default 0). A worker idles between steps (waiting for
   * the engine's next message) and its next step runs slower than back-to-back repeats would:
   * on the 2-core development VM a decode pass after 0.3 ms idle took 1.17x, after 2 ms 1.46x.
   */
  pauseMs?: number;
}

/** Runs `run` as `s` says and returns the timed results; `cost` reads a result's seconds. */
export function sample<T>(s: Sampling, run: () => T, cost: (t: T) => number): T[] {
  for (let i = 0; i < s.warmup; i++) run();
  const out: T[] = [];
  let spent = 0;
  while (out.length < s.min || (out.length < s.max && spent < s.seconds)) {
    blockFor(s.pauseMs ?? 0);
    const t = run();
    spent += cost(t);
    out.push(t);
  }
  return out;
}

/** Values in [-1, 1) from a seeded generator. */
function randomArray(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.next() * 2 - 1;
  return a;
}

/**
 * One timed pass over the dense ops at n tokens: every layer's ops in forward order, each timed,
 * then the final norm (untimed) and the LM head, as LocalForward.step runs them (minus
 * attention). Returns seconds per op for ONE layer (the mean over layers) and the LM head for n
 * rows. The LM head's time includes allocating the logits array it fills (page faults and
 * zeroing: ~15% of the op at 32 rows here), since the step returns a new one.
 * Buffers are made once per sweep object; callers interleave sweeps of several sizes.
 */
export function denseSweep(clock: Clock, runner: DenseRunner, n: number): () => Record<ProfiledOp, number> {
  const spec = runner.spec;
  const qw = spec.nHeads * spec.headDim, kw = spec.nKvHeads * spec.headDim;
  const x0 = randomArray(n * spec.dim, 11);
  const x = new Float32Array(x0.length);
  const attn = randomArray(n * qw, 12);
  const q = new Float32Array(n * qw), k = new Float32Array(n * kw), v = new Float32Array(n * kw);
  const positions = Int32Array.from({ length: n }, (_, i) => i % spec.contextLength);
  const rows = Int32Array.from({ length: n }, (_, i) => i);
  const now = clock.now;
  return () => {
    runner.reserve(n);
    x.set(x0); // the residual stream grows with every add; start each sweep from the same values
    const sum = new Map<ProfiledOp, number>(PROFILED_OPS.map((op) => [op, 0]));
    const add = (op: ProfiledOp, dt: number): void => { sum.set(op, sum.get(op)! + dt - clock.overhead); };
    for (let l = 0; l < spec.nLayers; l++) {
      let t = now(), u: number;
      runner.inputNorm(l, x, n); u = now(); add('input_norm', u - t); t = u;
      runner.qkv(l, n, q, k, v); u = now(); add('qkv', u - t); t = u;
      runner.applyRope(positions, n, q, k); u = now(); add('rope', u - t); t = u;
      runner.outProj(l, attn, n); u = now(); add('o', u - t); t = u;
      runner.residual(x, n); u = now(); add('add', u - t); t = u;
      runner.postAttnNorm(l, x, n); u = now(); add('post_attn_norm', u - t); t = u;
      runner.mlpUp(l, n); u = now(); add('mlp_up', u - t); t = u;
      runner.act(n); u = now(); add('act', u - t); t = u;
      runner.mlpDown(l, n); u = now(); add('mlp_down', u - t); t = u;
      runner.residual(x, n); u = now(); add('add', u - t);
    }
    runner.finalNorm(x, rows); // the cost model takes the final norm from the input_norm table
    const t = now();
    const logits = new Float32Array(n * spec.vocabSize); // a fresh array per step, as LocalForward.step returns
    runner.lmHead(n, logits);
    const out = Object.fromEntries(PROFILED_OPS.map((op) => [op, sum.get(op)! / spec.nLayers])) as Record<ProfiledOp, number>;
    out.lm_head = now() - t - clock.overhead;
    return out;
  };
}

/**
 * Streams every weight once, as a decode step does between two attention calls of one layer:
 * the dense ops of every layer and the LM head for one token. Run before each timed attention
 * repeat so that, as in a real step, K/V come from memory and not from a cache the previous
 * repeat left warm (for a model whose weights exceed the last-level cache).
 */
export function weightSweep(runner: DenseRunner): () => void {
  const spec = runner.spec;
  const x = randomArray(spec.dim, 41), attn = randomArray(spec.nHeads * spec.headDim, 42);
  const q = new Float32Array(spec.nHeads * spec.headDim), k = new Float32Array(spec.nKvHeads * spec.headDim), v = new Float32Array(k.length);
  const pos = new Int32Array(1), rows = new Int32Array(1), logits = new Float32Array(spec.vocabSize);
  return () => {
    runner.reserve(1);
    for (let l = 0; l < spec.nLayers; l++) {
      runner.preAttention(l, x, pos, 1, q, k, v);
      runner.postAttention(l, x, attn, 1);
    }
    runner.logits(x, rows, logits);
    x.fill(0.5);
  };
}

/** Decode attention grid: KV heads per request (store sizes), requests, and context lengths. */
export interface DecodeGrid {
  headsPerRequest: number[];
  requests: number[];
  contexts: number[];
}

/** KV block size of the stores the attention timings use (the serving engine's). */
const BLOCK = 16;

/**
 * One layer's attention for `items` as a primary rank runs the heads it holds (runtime/primary.ts):
 * q, k, v of the items' heads packed out of the step's [n, heads x width] buffers into fresh
 * arrays, attendPacked on the store (appending k, v), the output unpacked into `attn`. An
 * attention worker runs the same minus the packing, which the primary does for it.
 */
function attendAsPrimary(
  store: HeadKv, layer: number, group: number, hd: number, items: readonly AttentionItem[], rows: readonly number[],
  full: { q: Float32Array; k: Float32Array; v: Float32Array; attn: Float32Array; qw: number; kw: number }, scratch: AttentionScratch, kernels: DenseRunner['kernels'],
): void {
  const block = group * hd;
  const q = new Float32Array(packedLength(items, block));
  const k = new Float32Array(packedLength(items, hd));
  const v = new Float32Array(k.length);
  const out = new Float32Array(q.length);
  packHeads(full.q, full.qw, 0, block, items, rows, q);
  packHeads(full.k, full.kw, 0, hd, items, rows, k);
  packHeads(full.v, full.kw, 0, hd, items, rows, v);
  attendPacked(store, layer, group, items, q, k, v, out, scratch, kernels);
  unpackHeads(out, full.qw, 0, block, items, rows, full.attn);
}

/**
 * Decode attention of one layer: for each store size h (KV heads per request), each context c and
 * each request count R, times the attention of R sequences whose caches hold c - 1 positions (the
 * step appends the c-th and attends over c), over every layer in turn, per layer. A point has
 * heads = R x h and headTokens = R x h x c.
 */
export function timeDecodeAttention(
  clock: Clock, spec: ModelSpec, runner: DenseRunner, grid: DecodeGrid, sampling: Sampling,
  onPoint: (p: AttentionPoint) => void,
): AttentionPoint[] {
  const flush = weightSweep(runner);
  const group = spec.nHeads / spec.nKvHeads;
  const hd = spec.headDim;
  const L = spec.nLayers;
  const scratch = new AttentionScratch();
  const points: AttentionPoint[] = [];
  const maxR = Math.max(...grid.requests);
  const row = randomArray(hd, 21);
  const qw = spec.nHeads * hd, kw = spec.nKvHeads * hd;
  const full = { q: randomArray(maxR * qw, 22), k: randomArray(maxR * kw, 23), v: randomArray(maxR * kw, 24), attn: new Float32Array(maxR * qw), qw, kw };
  const contexts = [...new Set(grid.contexts)].sort((a, b) => a - b);
  const maxC = contexts[contexts.length - 1]!;
  for (const h of grid.headsPerRequest) {
    const heads = Array.from({ length: h }, (_, i) => i);
    const store = new HeadKv([0, L], hd, BLOCK, maxR * h * Math.ceil(maxC / BLOCK) + 1);
    let filled = 0; // positions cached for every sequence 0..maxR-1
    for (const c of contexts) {
      for (let s = 0; s < maxR; s++) {
        for (let l = 0; l < L; l++) for (const head of heads) for (let p = filled; p < c - 1; p++) store.write(s, head, l, p, row, 0, row, 0);
      }
      filled = Math.max(filled, c - 1);
      for (const R of grid.requests) {
        const items: AttentionItem[] = Array.from({ length: R }, (_, s) => ({ seq: s, start: c - 1, count: 1, heads }));
        const rows = items.map((_, s) => s);
        const once = (): void => { for (let l = 0; l < L; l++) attendAsPrimary(store, l, group, hd, items, rows, full, scratch, runner.kernels); };
        // The first point warms up the JIT; the first of each store also absorbs the collection
        // of the previous store's buffers. Position c - 1 is rewritten by every repeat.
        const extra = points.length === 0 ? 100 : c === contexts[0] && R === grid.requests[0] ? 20 : 0;
        for (let r = 0; r < extra; r++) once();
        const samples = sample(sampling, () => {
          flush();
          const t0 = clock.now();
          once();
          return (clock.now() - t0 - clock.overhead) / L;
        }, (dt) => dt * L);
        const p = { heads: R * h, headTokens: R * h * c, seconds: median(samples) };
        points.push(p);
        onPoint(p);
      }
    }
  }
  return points;
}

/**
 * Causal prefill attention of one layer over all KV heads: one new sequence of `tokens` tokens
 * (its KV allocated in the step, as a new request's is), over every layer in turn, per layer.
 */
export function timePrefillAttention(clock: Clock, spec: ModelSpec, runner: DenseRunner, tokens: number, sampling: Sampling): number {
  const group = spec.nHeads / spec.nKvHeads;
  const hd = spec.headDim;
  const L = spec.nLayers;
  const heads = Array.from({ length: spec.nKvHeads }, (_, i) => i);
  const store = new HeadKv([0, L], hd, BLOCK, spec.nKvHeads * Math.ceil(tokens / BLOCK) + 1);
  const scratch = new AttentionScratch();
  const qw = spec.nHeads * hd, kw = spec.nKvHeads * hd;
  const full = { q: randomArray(tokens * qw, 31), k: randomArray(tokens * kw, 32), v: randomArray(tokens * kw, 33), attn: new Float32Array(tokens * qw), qw, kw };
  const items: AttentionItem[] = [{ seq: 0, start: 0, count: tokens, heads }];
  const flush = weightSweep(runner);
  const samples = sample(sampling, () => {
    store.free(0);
    flush();
    const t0 = clock.now();
    for (let l = 0; l < L; l++) attendAsPrimary(store, l, group, hd, items, [0], full, scratch, runner.kernels);
    return (clock.now() - t0 - clock.overhead) / L;
  }, (dt) => dt * L);
  return median(samples);
}
