// Owns: measuring what drawing one token costs (model/sampler.ts) at the built-in model's
// vocabulary (4,096) and Llama-2's (32,000), by the sampler's path: greedy, a temperature alone
// (every token a candidate), top-p 0.9, top-k 40. Logits are a peaked, seeded distribution (a few
// likely tokens over a Gaussian tail), like a language model's. Per case: microseconds per draw
// (median of rounds) and the heap bytes allocated per draw. Must not: be part of the test run; it
// prints one JSON line per case and asserts nothing.
//
// Run: node --expose-gc --import tsx bench/sampling.ts   (without --expose-gc: no allocation figure)

import { sampleToken, type SamplingParams } from '../src/model/sampler.js';
import { median } from '../src/util/fit.js';
import { createRng } from '../src/util/rng.js';

const VOCABS = [4096, 32000];
const CASES: { name: string; params: SamplingParams }[] = [
  { name: 'greedy', params: { temperature: 0, topK: 0, topP: 1 } },
  { name: 'temperature 0.8', params: { temperature: 0.8, topK: 0, topP: 1 } },
  { name: 'top-p 0.9', params: { temperature: 0.8, topK: 0, topP: 0.9 } },
  { name: 'top-k 40', params: { temperature: 0.8, topK: 40, topP: 1 } },
];
const ROUNDS = 15;
/** Draws per round: enough for ~20 ms a round at the larger vocabulary. */
const DRAWS = 200;

/** A language model's logits, roughly: a Gaussian tail (sd 2) and a few tokens well above it. */
function peakedLogits(vocab: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const u = Math.max(rng.next(), 1e-12), v = rng.next();
    out[i] = 2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  for (let k = 0; k < 5; k++) out[Math.floor(rng.next() * vocab)] = 12 - 1.5 * k;
  return out;
}

const gc = (globalThis as { gc?: () => void }).gc;
for (const vocab of VOCABS) {
  const logits = Array.from({ length: 8 }, (_, i) => peakedLogits(vocab, 11 + i));
  for (const c of CASES) {
    const rng = createRng(5);
    let sink = 0;
    for (let i = 0; i < DRAWS; i++) sink += sampleToken(logits[i % 8]!, c.params, rng); // warm-up
    const perDraw: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      for (let i = 0; i < DRAWS; i++) sink += sampleToken(logits[i % 8]!, c.params, rng);
      perDraw.push(((performance.now() - t0) * 1000) / DRAWS);
    }
    let allocated: number | undefined;
    if (gc !== undefined) {
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < DRAWS; i++) sink += sampleToken(logits[i % 8]!, c.params, rng);
      allocated = Math.max(0, (process.memoryUsage().heapUsed - before) / DRAWS);
    }
    console.log(JSON.stringify({
      bench: 'sampling', vocab, case: c.name, us_per_draw: +median(perDraw).toFixed(2),
      ...(allocated !== undefined ? { heap_bytes_per_draw: Math.round(allocated) } : {}), sink: sink % 7,
    }));
  }
}
