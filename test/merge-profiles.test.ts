// Merging profiles of one machine taken one after another (`hetis profile --repeats N`): every
// number the median over them (of two, their mean), everything else equal in all of them, and a
// clear error naming where two profiles differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianProfile } from '../src/cost/merge-profiles.js';
import type { ProfileFile } from '../src/cost/profile-types.js';
import { FP32 } from '../src/cost/types.js';
import { HetisError } from '../src/util/errors.js';

const shape = { nLayers: 2, dim: 64, nHeads: 4, nKvHeads: 2, headDim: 16, ffnDim: 128, vocabSize: 256, gatedMlp: true };

function profile(createdAt: string, qkv: [number, number], peak: number, extra: Partial<ProfileFile['profiles'][0]> = {}): ProfileFile {
  return {
    format: 'hetis-profile', version: 1, createdAt,
    machine: { cpu: 'test cpu', cores: 2, memoryBytes: 1e9, node: 'v20', kernels: 'reference', clock: 'cpu' },
    devices: [{ name: 'cpu-test', kind: 'cpu', peakFlops: peak, memoryBytes: 1e9, memoryBandwidth: 20e9, computeEfficiency: 1, memoryEfficiency: 1, kernelOverhead: 0, defaultIntraLink: 'loopback' }],
    profiles: [{ device: 'cpu-test', model: shape, precision: FP32, dense: [{ op: 'qkv', tp: 1, tokens: [1, 64], seconds: qkv }], ...extra }],
    links: [{ kind: 'loopback', latency: peak / 1e15, bandwidth: 1e9 }],
  } as ProfileFile;
}

test('median profile: each number the median over the profiles, names and grids kept, the last one\'s time', () => {
  const a = profile('t1', [1e-5, 3e-4], 100e9, { stepOverhead: 3e-5 });
  const b = profile('t2', [3e-5, 1e-4], 120e9, { stepOverhead: 1e-5 });
  const c = profile('t3', [2e-5, 2e-4], 110e9, { stepOverhead: 2e-5 });
  const m = medianProfile([a, b, c]);
  assert.equal(m.createdAt, 't3');
  assert.equal(m.devices[0]!.name, 'cpu-test');
  assert.equal(m.devices[0]!.peakFlops, 110e9);
  assert.deepEqual(m.profiles[0]!.dense[0]!.tokens, [1, 64]);
  assert.deepEqual(m.profiles[0]!.dense[0]!.seconds, [2e-5, 2e-4]); // per entry, not per profile
  assert.equal(m.profiles[0]!.stepOverhead, 2e-5);
  assert.equal(m.links[0]!.latency, 110e9 / 1e15);
  // Of two: their mean. Of one: itself.
  const two = medianProfile([a, b]).profiles[0]!.dense[0]!.seconds;
  assert.ok(Math.abs(two[0]! - 2e-5) < 1e-18 && Math.abs(two[1]! - 2e-4) < 1e-18, JSON.stringify(two));
  assert.equal(medianProfile([a, b]).devices[0]!.peakFlops, 110e9);
  assert.deepEqual(medianProfile([a]), a);
  // The inputs are left as they were.
  assert.deepEqual(a.profiles[0]!.dense[0]!.seconds, [1e-5, 3e-4]);
});

test('median profile: profiles that differ in anything but numbers are refused, naming where', () => {
  const a = profile('t1', [1e-5, 3e-4], 100e9);
  const grid = profile('t2', [1e-5, 3e-4], 100e9);
  grid.profiles[0]!.dense[0]!.tokens = [1, 16, 64];
  grid.profiles[0]!.dense[0]!.seconds = [1e-5, 1e-4, 3e-4];
  assert.throws(() => medianProfile([a, grid]), (e: unknown) => e instanceof HetisError && e.code === 'bad_input' && /profiles\[0\]\.dense\[0\]\.tokens: lists of different lengths/.test(e.message));
  const other = profile('t2', [1e-5, 3e-4], 100e9);
  other.machine.kernels = 'openblas';
  assert.throws(() => medianProfile([a, other]), /\.machine\.kernels: "reference" against "openblas"/);
  const more = profile('t2', [1e-5, 3e-4], 100e9, { stepOverhead: 1e-5 });
  assert.throws(() => medianProfile([a, more]), /\.profiles\[0\]: fields/);
  assert.throws(() => medianProfile([]), /at least one/);
});
