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

/**
 * Samples one token. Order: temperature scaling, softmax, top-k, top-p, renormalise, draw.
 * With top-k or top-p, the draw walks the candidates by probability (then id; a top-k up to 256
 * is picked in one pass, not by sorting them all); with neither, every token stays a candidate,
 * so the order cannot change the distribution and the draw walks them by id (sorting 4,096 of
 * them cost ~0.7 ms a token). Either way it is reproducible for a seed.
 */
export function sampleToken(logits: Float32Array, params: SamplingParams, rng: Rng): number {
  // Below 1e-5, 1/T overflows the exponent: such a temperature is greedy in effect and in fact.
  if (params.temperature < 1e-5 || params.topK === 1) return argmax(logits);
  const n = logits.length;
  const invT = 1 / params.temperature;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i]! - max) * invT);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) probs[i]! /= sum;
  if (params.topK === 0 && params.topP >= 1) {
    let mass = 0;
    for (let i = 0; i < n; i++) mass += probs[i]!;
    let r = rng.next() * mass;
    let last = 0;
    for (let i = 0; i < n; i++) {
      if (probs[i]! <= 0) continue;
      last = i;
      r -= probs[i]!;
      if (r < 0) return i;
    }
    return last;
  }
  // With top-p < 1, a token other than the most likely one with probability below
  // (1-p)/(n-1) cannot be in the top-p set (it and all smaller ones sum to less than 1-p), so
  // prune before sorting (the sort is the cost on large vocabularies). The most likely token
  // (probability 1/sum, since its scaled logit is 0) always stays.
  const floor = params.topP < 1 ? Math.min((1 - params.topP) / Math.max(1, n - 1), 1 / sum) : 0;
  const cand: number[] = [];
  for (let i = 0; i < n; i++) if (probs[i]! >= floor && probs[i]! > 0) cand.push(i);
  if (params.topK > 0 && params.topK < cand.length && params.topK <= PARTIAL_SORT_MAX_K) {
    const top = mostLikely(probs, cand, params.topK); // the same first k as the full sort, without it
    cand.length = 0;
    cand.push(...top);
  } else {
    cand.sort((a, b) => probs[b]! - probs[a]! || a - b);
  }
  let keep = cand.length;
  if (params.topK > 0 && params.topK < keep) keep = params.topK;
  if (params.topP < 1) {
    let cum = 0;
    for (let i = 0; i < keep; i++) {
      cum += probs[cand[i]!]!;
      if (cum >= params.topP) { keep = i + 1; break; }
    }
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += probs[cand[i]!]!;
  let r = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    r -= probs[cand[i]!]!;
    if (r < 0) return cand[i]!;
  }
  return cand[keep - 1]!;
}

/** Up to this top-k, the k most likely candidates are picked in one pass instead of sorting them all. */
const PARTIAL_SORT_MAX_K = 256;

/**
 * The `k` most likely of `cand` (ascending ids), by probability then id, in that order: what
 * sorting them all and keeping the first `k` gives, in one pass over a k-long buffer.
 */
export function mostLikely(probs: Float64Array, cand: readonly number[], k: number): number[] {
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
