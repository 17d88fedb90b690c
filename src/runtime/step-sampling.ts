// Owns: drawing each sampled chunk's next token from a step's logits, with a random stream
// that depends only on the request's seed and the position being sampled (so the output of a
// seeded request does not depend on batching, preemption or which devices held its heads).
// Must not: run the model.

import type { RequestSampling, StepChunk } from '../engine/types.js';
import { argmax, sampleToken } from '../model/sampler.js';
import { createRng } from '../util/rng.js';

/** The sampling chunks of a step, in order: the rows the forward pass returns logits for. */
export function samplingChunks(chunks: readonly StepChunk[]): StepChunk[] {
  return chunks.filter((c) => c.sample);
}

/** Seed of the stream that samples position `position` of a request seeded `seed` (mixes both, 32-bit). */
export function positionSeed(seed: number, position: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (position + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Tokens for the sampling chunks: logits [rows, vocab] row i belongs to sampled[i]. The token
 * sampled after a chunk ending at position p is drawn for position p + 1.
 */
export function sampleRows(logits: Float32Array, vocab: number, sampled: readonly StepChunk[]): Record<string, number> {
  const out: Record<string, number> = {};
  sampled.forEach((c, i) => {
    const row = logits.subarray(i * vocab, (i + 1) * vocab);
    out[c.request] = draw(row, c.sampling, c.start + c.count);
  });
  return out;
}

/** The token for `position` from its logits row, drawn as `s` says (greedy when absent). */
export function draw(row: Float32Array, s: RequestSampling | undefined, position: number): number {
  if (s === undefined || s.temperature < 1e-5 || s.topK === 1) return argmax(row);
  return sampleToken(row, s, createRng(positionSeed(s.seed, position)));
}
