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
 * Candidates are sorted by probability (then id), so the draw is reproducible for a seed.
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
  // With top-p < 1, a token other than the most likely one with probability below
  // (1-p)/(n-1) cannot be in the top-p set (it and all smaller ones sum to less than 1-p), so
  // prune before sorting (the sort is the cost on large vocabularies). The most likely token
  // (probability 1/sum, since its scaled logit is 0) always stays.
  const floor = params.topP < 1 ? Math.min((1 - params.topP) / Math.max(1, n - 1), 1 / sum) : 0;
  const cand: number[] = [];
  for (let i = 0; i < n; i++) if (probs[i]! >= floor && probs[i]! > 0) cand.push(i);
  cand.sort((a, b) => probs[b]! - probs[a]! || a - b);
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
