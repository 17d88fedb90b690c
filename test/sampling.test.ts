// Sampling (greedy, temperature, top-k, top-p, seeded), stop strings, and the seeded RNG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { argmax, mostLikely, sampleToken, samplingKind, validateSampling, GREEDY } from '../src/model/sampler.js';
import { StopMatcher } from '../src/model/stop.js';
import { createRng } from '../src/util/rng.js';
import { HetisError } from '../src/util/errors.js';

const logits = new Float32Array([1, 3, 2, 3, -1]);

test('greedy is argmax, lowest index on ties', () => {
  assert.equal(argmax(logits), 1);
  assert.equal(sampleToken(logits, GREEDY, createRng(1)), 1);
});

test('the same seed gives the same draws; different seeds differ', () => {
  const p = { temperature: 1, topK: 0, topP: 1 };
  const draw = (seed: number): number[] => {
    const rng = createRng(seed);
    return Array.from({ length: 50 }, () => sampleToken(logits, p, rng));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('top-k 2 only ever picks the two most likely tokens', () => {
  const rng = createRng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, rng));
  assert.deepEqual([...seen].sort(), [1, 3]);
});

test('top-p keeps the smallest set reaching p', () => {
  // probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps ids 0 and 1 only
  const l = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const rng = createRng(4);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[sampleToken(l, { temperature: 1, topK: 0, topP: 0.75 }, rng)]!++;
  assert.equal(counts[2], 0);
  assert.equal(counts[3], 0);
  // renormalised 0.5/0.8 = 0.625 for id 0: allow a generous band around it
  const share = counts[0]! / 4000;
  assert.ok(share > 0.58 && share < 0.67, `share of id 0: ${share}`);
});

test('temperature sharpens and flattens the distribution', () => {
  const l = new Float32Array([0, 1]);
  const share = (temperature: number): number => {
    const rng = createRng(5);
    let ones = 0;
    for (let i = 0; i < 3000; i++) ones += sampleToken(l, { temperature, topK: 0, topP: 1 }, rng);
    return ones / 3000;
  };
  const cold = share(0.25), warm = share(1), hot = share(10);
  assert.ok(cold > warm && warm > hot, `${cold} ${warm} ${hot}`);
  assert.ok(Math.abs(warm - 1 / (1 + Math.exp(-1))) < 0.04);
});

test('the k most likely in one pass equal the first k of the full sort, ties by id (property)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 300 }), (ws, k) => {
    const probs = Float64Array.from(ws, (w) => w / 20); // many ties
    const cand = ws.map((_, i) => i);
    const sorted = [...cand].sort((a, b) => probs[b]! - probs[a]! || a - b).slice(0, k);
    assert.deepEqual(mostLikely(probs, cand, k), sorted);
  }), { numRuns: 300 });
});

/** Top-p (and top-k) as the plain definition says: every candidate sorted by weight, then id; the prefix reaching p; the draw walks it. */
function topPByFullSort(logits: Float32Array, temperature: number, topK: number, topP: number, rng: ReturnType<typeof createRng>): number {
  const n = logits.length, invT = 1 / temperature;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const w = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) { w[i] = Math.exp((logits[i]! - max) * invT); sum += w[i]!; }
  const floor = topP < 1 ? Math.min(((1 - topP) / Math.max(1, n - 1)) * sum, 1) : 0;
  const cand = [...w.keys()].filter((i) => w[i]! >= floor && w[i]! > 0).sort((a, b) => w[b]! - w[a]! || a - b);
  let keep = cand.length;
  if (topP < 1) {
    let cum = 0;
    for (let i = 0; i < cand.length; i++) { cum += w[cand[i]!]!; if (cum >= topP * sum) { keep = i + 1; break; } }
  }
  if (topK > 0 && topK < keep) keep = topK;
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += w[cand[i]!]!;
  let r = rng.next() * mass;
  for (let i = 0; i < keep; i++) { r -= w[cand[i]!]!; if (r < 0) return cand[i]!; }
  return cand[keep - 1]!;
}

test('top-p from the bucketed search of its set draws exactly what sorting every candidate draws (property)', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.double({ min: 0.2, max: 8, noNaN: true }),
    // p within an ulp or so of 1 too: the set's bucket sums and the sorted walk may then disagree by rounding (the full sort's fallback).
    fc.double({ min: 0.2, max: 2, noNaN: true }), fc.oneof(fc.double({ min: 0.01, max: 0.999, noNaN: true }), fc.constantFrom(1 - 1e-12, 1 - 1e-15, 1 - 2 ** -53)), fc.constantFrom(0, 0, 5, 300, 1000),
    (n, seed, spread, temperature, topP, topK) => {
      // A Gaussian tail of the given spread, a few tokens well above it, and ties (rounded logits).
      const g = createRng(seed);
      const logits = Float32Array.from({ length: n }, () => Math.round(spread * Math.sqrt(-2 * Math.log(Math.max(g.next(), 1e-12))) * Math.cos(2 * Math.PI * g.next()) * 8) / 8);
      for (let k = 0; k < Math.min(5, n); k++) logits[Math.floor(g.next() * n)] = 3 * spread - k;
      for (let d = 0; d < 3; d++) {
        const got = sampleToken(logits, { temperature, topK, topP }, createRng(seed + d));
        assert.equal(got, topPByFullSort(logits, temperature, topK, topP, createRng(seed + d)));
      }
    },
  ), { numRuns: 300 });
});

test('sampling always returns a valid index (property)', () => {
  fc.assert(fc.property(
    fc.array(fc.float({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 40 }),
    fc.float({ min: Math.fround(0.01), max: 5, noNaN: true }), fc.nat(10), fc.float({ min: Math.fround(0.01), max: 1, noNaN: true }), fc.nat(),
    (arr, temperature, topK, topP, seed) => {
      const id = sampleToken(new Float32Array(arr), { temperature, topK, topP }, createRng(seed));
      return Number.isInteger(id) && id >= 0 && id < arr.length;
    },
  ));
});

test('samplingKind names the path sampleToken takes: greedy, a temperature alone, or with top-k / top-p', () => {
  assert.equal(samplingKind(undefined), 'greedy');
  assert.equal(samplingKind(GREEDY), 'greedy');
  assert.equal(samplingKind({ temperature: 1e-6, topK: 0, topP: 0.9 }), 'greedy');
  assert.equal(samplingKind({ temperature: 0.8, topK: 1, topP: 1 }), 'greedy');
  assert.equal(samplingKind({ temperature: 0.8, topK: 0, topP: 1 }), 'plain');
  assert.equal(samplingKind({ temperature: 0.8, topK: 0, topP: 0.9 }), 'truncated');
  assert.equal(samplingKind({ temperature: 0.8, topK: 40, topP: 1 }), 'truncated');
  // The greedy path returns argmax whatever the rng: the kind is what the sampler does.
  const logits = Float32Array.from([0.1, 3, -1, 2]);
  assert.equal(sampleToken(logits, { temperature: 0.8, topK: 1, topP: 1 }, createRng(1)), argmax(logits));
});

test('bad sampling values are rejected, all listed', () => {
  assert.throws(() => validateSampling({ temperature: -1, topK: 1.5, topP: 0 }),
    (e: unknown) => e instanceof HetisError && /temperature/.test(e.message) && /top-k/.test(e.message) && /top-p/.test(e.message));
});

test('stop strings: text before the stop is emitted, partial matches are held back', () => {
  const m = new StopMatcher(['END', '\n\n']);
  assert.deepEqual(m.push('Hello E'), { text: 'Hello ', stopped: false });
  assert.deepEqual(m.push('N'), { text: '', stopped: false });
  assert.deepEqual(m.push('X and'), { text: 'ENX and', stopped: false });
  assert.deepEqual(m.push(' more\n'), { text: ' more', stopped: false });
  assert.deepEqual(m.push('\nignored'), { text: '', stopped: true });
  assert.deepEqual(m.push('x'), { text: '', stopped: true });
  assert.equal(m.flush(), '');
  const m2 = new StopMatcher(['STOP']);
  assert.deepEqual(m2.push('the ST'), { text: 'the ', stopped: false });
  assert.equal(m2.flush(), 'ST');
});

test('stop strings split at any point give the same text (property)', () => {
  fc.assert(fc.property(fc.string({ maxLength: 30 }), fc.array(fc.nat(30), { maxLength: 5 }), (s, cuts) => {
    const stops = ['ab', 'cab', 'zz'];
    const whole = new StopMatcher(stops);
    const r = whole.push(s);
    const expected = r.text + (r.stopped ? '' : whole.flush());
    const parts = new StopMatcher(stops);
    const points = [...new Set(cuts.map((c) => Math.min(c, s.length)))].sort((a, b) => a - b);
    let out = '';
    let prev = 0;
    let stopped = false;
    for (const p of [...points, s.length]) {
      const q = parts.push(s.slice(prev, p));
      out += q.text;
      stopped ||= q.stopped;
      prev = p;
    }
    if (!stopped) out += parts.flush();
    return out === expected && stopped === r.stopped;
  }));
});

test('rng is uniform-ish in [0, 1)', () => {
  const rng = createRng(42);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});
