// Owns: choosing the next token from logits (greedy, temperature, top-k, top-p), seeded.
// Must not: know about sequences, stop conditions or tokenizers.

import type { Rng } from '../util/rng.js';
import { HetisError } from '../util/errors.js';

export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 = no limit. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 = no limit. */
  topP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };

/**
 * What drawing a token costs beyond the LM head, by the sampler's path: `greedy` (argmax, the
 * logits read once), `plain` (a temperature, every token a candidate: a softmax over the
 * vocabulary and a walk by id), `truncated` (top-k or top-p as well: the candidates pruned and
 * picked or sorted by probability).
 */
export type SamplingKind = 'greedy' | 'plain' | 'truncated';

/** The path sampleToken takes for `p` (absent: greedy). */
export function samplingKind(p: SamplingParams | undefined): SamplingKind {
  if (p === undefined || p.temperature < 1e-5 || p.topK === 1) return 'greedy';
  return p.topK === 0 && p.topP >= 1 ? 'plain' : 'truncated';
}

/** Throws a bad_input HetisError listing every out-of-range value. */
export function validateSampling(p: SamplingParams): SamplingParams {
  const problems: string[] = [];
  if (!(Number.isFinite(p.temperature) && p.temperature >= 0)) problems.push(`temperature must be >= 0, got ${p.temperature}`);
  if (!(Number.isInteger(p.topK) && p.topK >= 0)) problems.push(`top-k must be an integer >= 0, got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1)) problems.push(`top-p must be in (0, 1], got ${p.topP}`);
  if (problems.length > 0) throw new HetisError('bad_input', problems.join('; '));
  return p;
}

/** Index of the largest logit (the lowest index on ties). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let max = logits[0] ?? -Infinity;
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > max) { max = v; best = i; }
  }
  return best;
}

/** The draw's weights, reused from one draw to the next (grow-only): a vocabulary's worth of doubles is not allocated per token. */
let weights = new Float64Array(0);
/** The candidates of a truncated draw, and those of them that can be in its top-p set, reused the same way. */
let candidates = new Int32Array(0);
let topPMembers = new Int32Array(0);

/**
 * Samples one token. Order: temperature scaling, softmax, top-k, top-p, renormalise, draw.
 * The softmax is left unnormalised (each token's weight exp((logit - max) / T), the most likely
 * token's 1): every threshold is scaled by the weights' sum instead, which saves two passes over
 * the vocabulary. With top-k or top-p, the draw walks the candidates by probability (then id; a
 * top-k up to 256 is picked in one pass, not by sorting them all); with neither, every token
 * stays a candidate, so the order cannot change the distribution and the draw walks them by id
 * (sorting 4,096 of them cost ~0.7 ms a token). Either way it is reproducible for a seed.
 */
export function sampleToken(logits: Float32Array, params: SamplingParams, rng: Rng): number {
  // Below 1e-5, 1/T overflows the exponent: such a temperature is greedy in effect and in fact.
  if (params.temperature < 1e-5 || params.topK === 1) return argmax(logits);
  const n = logits.length;
  const invT = 1 / params.temperature;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  if (weights.length < n) weights = new Float64Array(n);
  const w = weights;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i]! - max) * invT);
    w[i] = e;
    sum += e;
  }
  if (params.topK === 0 && params.topP >= 1) {
    let r = rng.next() * sum;
    let last = 0;
    for (let i = 0; i < n; i++) {
      if (w[i]! <= 0) continue;
      last = i;
      r -= w[i]!;
      if (r < 0) return i;
    }
    return last;
  }
  // With top-p < 1, a token other than the most likely one with probability below
  // (1-p)/(n-1) cannot be in the top-p set (it and all smaller ones sum to less than 1-p), so
  // prune before sorting (the sort is the cost on large vocabularies). The most likely token
  // (weight 1) always stays. In weights: probability x sum.
  const floor = params.topP < 1 ? Math.min(((1 - params.topP) / Math.max(1, n - 1)) * sum, 1) : 0;
  if (candidates.length < n) candidates = new Int32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) if (w[i]! >= floor && w[i]! > 0) candidates[count++] = i;
  const byWeight = (a: number, b: number): number => w[b]! - w[a]! || a - b;
  const target = params.topP * sum;
  // The prefix of the candidates sorted by weight that reaches p of the mass (all of them without top-p).
  const prefix = (cand: ArrayLike<number>): number => {
    if (params.topP >= 1) return cand.length;
    let cum = 0;
    for (let i = 0; i < cand.length; i++) {
      cum += w[cand[i]!]!;
      if (cum >= target) return i + 1;
    }
    return -1; // not reached
  };
  let cand: ArrayLike<number>;
  if (params.topK > 0 && params.topK < count && params.topK <= PARTIAL_SORT_MAX_K) {
    cand = mostLikely(w, candidates.subarray(0, count), params.topK); // the same first k as the full sort, without it
  } else {
    const set = params.topP < 1 ? topPSet(logits, w, count, max, invT, target).sort(byWeight) : undefined;
    // Without top-p, or when rounding left its set short of p: every candidate sorted.
    cand = set !== undefined && prefix(set) >= 0 ? set : candidates.subarray(0, count).sort(byWeight);
  }
  let keep = prefix(cand);
  if (keep < 0) keep = cand.length;
  if (params.topK > 0 && params.topK < keep) keep = params.topK;
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += w[cand[i]!]!;
  let r = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    r -= w[cand[i]!]!;
    if (r < 0) return cand[i]!;
  }
  return cand[keep - 1]!;
}

/** Buckets of the top-p set's search: a factor of two of weight each, the last one holding the rest. */
const WEIGHT_BUCKETS = 64;
const bucketMass = new Float64Array(WEIGHT_BUCKETS);

/**
 * The candidates (`candidates[0..count)`, ascending ids) that can be in the top-p set, unsorted:
 * every one at least as heavy as the lightest of the factor-of-two weight buckets, from the
 * heaviest down, whose masses first reach `target` (p of the weights' sum). Every candidate left
 * out is lighter than every one kept, so the kept ones sorted by weight begin as all of them
 * sorted would, up to where the top-p prefix ends: a few hundred sorted instead of thousands
 * (the sort was the cost: ~1 ms a token at 32,000 tokens). Into their own buffer: the
 * candidates stay whole for the full sort when rounding leaves this set short of p.
 */
function topPSet(logits: Float32Array, w: Float64Array, count: number, max: number, invT: number, target: number): Int32Array {
  const scale = invT * Math.LOG2E; // -log2(weight) = (max - logit) / T x log2(e)
  bucketMass.fill(0);
  const bucketOf = (i: number): number => Math.min(WEIGHT_BUCKETS - 1, Math.floor((max - logits[i]!) * scale));
  for (let j = 0; j < count; j++) { const i = candidates[j]!; bucketMass[bucketOf(i)]! += w[i]!; }
  let last = WEIGHT_BUCKETS - 1, cum = 0;
  for (let b = 0; b < WEIGHT_BUCKETS; b++) {
    cum += bucketMass[b]!;
    if (cum >= target) { last = b; break; }
  }
  let lightest = Infinity;
  for (let j = 0; j < count; j++) { const i = candidates[j]!; if (bucketOf(i) <= last && w[i]! < lightest) lightest = w[i]!; }
  if (topPMembers.length < count) topPMembers = new Int32Array(candidates.length);
  let m = 0;
  for (let j = 0; j < count; j++) { const i = candidates[j]!; if (w[i]! >= lightest) topPMembers[m++] = i; }
  return topPMembers.subarray(0, m);
}

/** Up to this top-k, the k most likely candidates are picked in one pass instead of sorting them all. */
const PARTIAL_SORT_MAX_K = 256;

/**
 * The `k` most likely of `cand` (ascending ids), by probability (or any weights proportional to
 * it) then id, in that order: what sorting them all and keeping the first `k` gives, in one pass
 * over a k-long buffer.
 */
export function mostLikely(probs: Float64Array, cand: ArrayLike<number> & Iterable<number>, k: number): number[] {
  const out: number[] = [];
  for (const i of cand) {
    const p = probs[i]!;
    if (out.length < k) out.push(i);
    else if (p > probs[out[k - 1]!]!) out[k - 1] = i; // a tie ranks the lower id (already in) first
    else continue;
    let j = out.length - 1;
    while (j > 0 && probs[out[j - 1]!]! < p) { out[j] = out[j - 1]!; j--; }
    out[j] = i;
  }
  return out;
}
