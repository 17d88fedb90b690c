// The profiler: a quick profile of a tiny model has a table for every op (ascending tokens,
// positive seconds), a non-negative attention fit, a fitted link, leaves no worker process
// behind, round-trips through JSON and is read by the profiled cost model; `hetis profile`
// writes the file, and of a model file also measures real steps of a local cluster. Never asserts on how long anything took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelSpec } from '../src/model/spec.js';
import type { ProfileFile } from '../src/cost/profile-types.js';
import { FP32, type DenseOp } from '../src/cost/types.js';
import { createProfiledCostModel } from '../src/cost/profiled.js';
import { createRooflineCostModel } from '../src/cost/roofline.js';
import { writeGgufModel } from '../src/model/gguf-llama.js';
import { fitDecodeAttention, profileLocal } from '../src/runtime/profile.js';
import { median, nonNegativeLeastSquares, trimmedMean } from '../src/util/fit.js';
import { randomModel, syntheticVocab } from './helpers/random-model.js';
import { tempDir } from './helpers/files.js';
import { repoRoot } from './helpers/shared.js';

const TINY: ModelSpec = {
  name: 'tiny-profile', nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, dim: 32, ffnDim: 64,
  vocabSize: 97, contextLength: 64, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};
const DENSE_OPS: readonly DenseOp[] = ['input_norm', 'qkv', 'rope', 'o', 'post_attn_norm', 'mlp_up', 'act', 'mlp_down', 'add'];

function ascending(xs: readonly number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]!);
}

function positive(xs: readonly number[]): boolean {
  return xs.every((x) => Number.isFinite(x) && x > 0);
}

test('quick profile of a tiny model: structure, fits, children gone, JSON round trip, cost model reads it', async () => {
  const pids: number[] = [];
  const progress: [number, number][] = [];
  const p = await profileLocal({
    model: TINY, quick: true,
    onSpawn: (pid) => pids.push(pid),
    onProgress: (done, total) => progress.push([done, total]),
  });

  assert.equal(p.format, 'hetis-profile');
  assert.equal(p.version, 1);
  assert.ok(!Number.isNaN(Date.parse(p.createdAt)));
  assert.ok(p.machine.cores > 0 && p.machine.memoryBytes > 0 && p.machine.kernels.length > 0);

  assert.equal(p.devices.length, 1);
  const dev = p.devices[0]!;
  assert.equal(dev.kind, 'cpu');
  assert.ok(positive([dev.peakFlops, dev.memoryBandwidth, dev.memoryBytes, dev.kernelOverhead]), JSON.stringify(dev));
  assert.equal(dev.computeEfficiency, 1);
  assert.equal(dev.memoryEfficiency, 1);

  assert.equal(p.profiles.length, 1);
  const prof = p.profiles[0]!;
  assert.equal(prof.device, dev.name);
  assert.deepEqual(prof.model, { dim: 32, ffnDim: 64, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 97, gatedMlp: true });
  assert.deepEqual(prof.precision, FP32);
  for (const op of [...DENSE_OPS, 'lm_head'] as const) {
    const t = prof.dense.find((x) => x.op === op);
    assert.ok(t, `no table for ${op}`);
    assert.equal(t.tp, 1);
    assert.equal(t.tokens.length, t.seconds.length);
    assert.ok(t.tokens.length >= 2 && ascending(t.tokens), `${op} tokens ${t.tokens}`);
    assert.ok(positive(t.seconds), `${op} seconds ${t.seconds}`);
  }

  const attn = prof.decodeAttention!;
  assert.ok(attn.points.length >= 3);
  for (const c of [attn.fixed, attn.perHead, attn.perHeadToken]) assert.ok(Number.isFinite(c) && c >= 0, JSON.stringify(attn));
  for (const pt of attn.points) assert.ok(pt.heads > 0 && pt.headTokens >= pt.heads && pt.seconds > 0, JSON.stringify(pt));

  const pre = prof.prefillAttention!;
  assert.ok(pre.tokens.length > 0 && ascending(pre.tokens) && pre.tokens.at(-1)! <= TINY.contextLength);
  assert.ok(positive(pre.seconds));

  assert.equal(p.links.length, 1);
  const link = p.links[0]!;
  assert.equal(link.kind, 'loopback');
  assert.ok(ascending(link.bytes) && positive(link.seconds));
  assert.ok(link.latency >= 0 && link.bandwidth > 0, JSON.stringify(link));

  // The transport's worker process was started and is gone (killed and reaped).
  assert.equal(pids.length, 1);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} still exists`);

  // Progress counts up to its total.
  assert.ok(progress.length > 0);
  assert.ok(progress.every(([d, t], i) => d === i + 1 && t === progress[0]![1]));
  assert.equal(progress.at(-1)![0], progress.at(-1)![1]);

  const back = JSON.parse(JSON.stringify(p)) as ProfileFile;
  assert.deepEqual(back, p);

  // The profiled cost model takes its tables for this device.
  const cost = createProfiledCostModel(createRooflineCostModel(TINY, FP32), back.profiles, back.links);
  const e = cost.denseLayer(dev, 4, 1);
  assert.ok(e.seconds > 0);
  assert.ok(Object.values(e.source ?? {}).every((s) => s === 'table'), JSON.stringify(e.source));
  assert.equal(cost.decodeAttention(dev, 100, 10).source?.['decode_attn'], 'fit');
});

test('decode attention fit recovers exact coefficients and stays non-negative', () => {
  const truth = { fixed: 2e-6, perHead: 5e-7, perHeadToken: 2e-8 };
  const points = [[1, 16], [4, 64], [16, 256], [6, 3072], [24, 512], [96, 24576], [2, 1024]].map(([h, ht]) => ({
    heads: h!, headTokens: ht!, seconds: truth.fixed + truth.perHead * h! + truth.perHeadToken * ht!,
  }));
  const fit = fitDecodeAttention(points);
  assert.ok(Math.abs(fit.fixed - truth.fixed) < 1e-12 && Math.abs(fit.perHead - truth.perHead) < 1e-13);
  assert.ok(Math.abs(fit.perHeadToken - truth.perHeadToken) / truth.perHeadToken < 1e-6);
  assert.equal(fit.points.length, points.length);
  // Data that an unconstrained fit would explain with a negative per-head cost.
  const skew = [{ heads: 1, headTokens: 100, seconds: 3e-6 }, { heads: 50, headTokens: 200, seconds: 2e-6 }, { heads: 10, headTokens: 1000, seconds: 2e-5 }];
  const f2 = fitDecodeAttention(skew);
  for (const c of [f2.fixed, f2.perHead, f2.perHeadToken]) assert.ok(c >= 0);
});

test('non-negative least squares: exact, constrained and weighted cases', () => {
  const X = [[1, 0], [1, 1], [1, 2], [1, 3]];
  assert.deepEqual(nonNegativeLeastSquares(X, [1, 3, 5, 7]).map((c) => +c.toFixed(9)), [1, 2]);
  // The best line has a negative intercept; the constrained answer passes through the origin.
  const c = nonNegativeLeastSquares(X, [-1, 2, 5, 8]);
  assert.equal(c[0], 0);
  assert.ok(c[1]! > 0);
  // Weights pull the fit toward the heavy row.
  const w = nonNegativeLeastSquares([[1], [1]], [1, 3], [1, 3]);
  assert.ok(Math.abs(w[0]! - 2.5) < 1e-12);
  assert.equal(median([3, 1, 2]), 2);
  // The mean without the slowest 2%: a round trip's slow tail counts, a far outlier does not.
  const times = [...Array.from({ length: 90 }, () => 1), ...Array.from({ length: 8 }, () => 3), 50, 60];
  assert.equal(median(times), 1);
  assert.ok(Math.abs(trimmedMean(times) - (90 + 24) / 98) < 1e-12);
  assert.equal(trimmedMean([5]), 5);
});

test('hetis profile --quick writes the profile (default path under the current directory, and --out)', () => {
  const dir = tempDir('profile-cli');
  const model = join(dir, 'tiny.gguf');
  writeGgufModel(model, randomModel(TINY, 3), syntheticVocab(TINY.vocabSize));
  const tsx = import.meta.resolve('tsx');
  const run = (cwd: string, ...args: string[]): ReturnType<typeof spawnSync> => spawnSync(
    process.execPath, ['--import', tsx, join(repoRoot, 'src/cli/main.ts'), 'profile', '--quick', '--model', model, ...args],
    { cwd, encoding: 'utf8', timeout: 60_000 },
  );
  const a = run(dir);
  assert.equal(a.status, 0, String(a.stderr));
  const defaultPath = join(dir, '.hetis-cache', 'profile.json');
  assert.ok(existsSync(defaultPath));
  assert.match(String(a.stdout), /\.hetis-cache\/profile\.json/);
  assert.match(String(a.stderr), /hetis profile: dense ops/); // not a terminal: one line per phase
  const p = JSON.parse(readFileSync(defaultPath, 'utf8')) as ProfileFile;
  assert.equal(p.format, 'hetis-profile');
  assert.equal(p.profiles[0]!.model.dim, TINY.dim);
  // A model file: real steps of a local cluster running it were measured too.
  const prof = p.profiles[0]!;
  assert.ok(prof.stepOverhead !== undefined && prof.stepOverhead >= 0, 'step overhead');
  const kvInStep = prof.attentionInStep;
  assert.ok(typeof kvInStep === 'object' && Number.isFinite(kvInStep.perHead) && Number.isFinite(kvInStep.perHeadToken) && kvInStep.perHeadToken >= 0, `attention in step ${JSON.stringify(kvInStep)}`);
  // The quick grid's prompt chunk (48 tokens) also gives the prefill attention in a step over its table.
  const pre = prof.prefillAttentionInStep;
  assert.ok(pre !== undefined && pre.tokens.length === 1 && pre.tokens[0] === 48 && positive(pre.factor), `prefill attention in step ${JSON.stringify(pre)}`);
  const cold = prof.coldSteps!;
  assert.ok(ascending(cold.idle) && cold.wake.length === cold.idle.length && cold.afterPrefill.length > 0, JSON.stringify(cold));
  assert.ok([...cold.wake, ...cold.afterPrefill].every((x) => Number.isFinite(x) && x >= 0), JSON.stringify(cold));
  const eng = prof.engineStep!;
  assert.ok(eng.fixed >= 0 && eng.perSequence >= 0 && (eng.points ?? []).length > 0, JSON.stringify(eng));
  assert.ok(eng.afterPrefill !== undefined && eng.afterPrefill.length === cold.afterPrefill.length && eng.afterPrefill.every((x) => Number.isFinite(x) && x >= 0), JSON.stringify(eng));
  const mig = prof.migration!;
  assert.ok(mig.perHead >= 0 && mig.bytes > 0 && mig.perStep !== undefined && Number.isFinite(mig.perStep) && mig.perStep >= 0 && mig.perHead + mig.perStep > 0, `migration ${JSON.stringify(mig)}`);
  const samp = prof.sampling!;
  assert.ok(samp !== undefined && samp.plain >= 0 && samp.truncated >= 0 && Number.isFinite(samp.plain + samp.truncated), `sampling ${JSON.stringify(samp)}`);
  const inStep = prof.denseInStep!;
  assert.ok(ascending(inStep.tokens) && inStep.tokens[0] === 1 && inStep.local.length === inStep.tokens.length && inStep.remote.length === inStep.tokens.length, JSON.stringify(inStep));
  // Ratios of the same work in a step and outside it (near 1 for the built-in model; for this
  // tiny one the step's own fixed work outweighs its ops: up to ~3 at one token under load).
  assert.ok([...inStep.local, ...inStep.remote].every((x) => Number.isFinite(x) && x > 0.3 && x < 20), JSON.stringify(inStep));

  // Two profiles in a row, merged: each number their median (of two, their mean).
  const out = join(dir, 'sub', 'p.json');
  const b = run(dir, '--out', out, '--threads', '1', '--repeats', '2');
  assert.equal(b.status, 0, String(b.stderr));
  assert.match(String(b.stderr), /pass 1 of 2: dense ops/);
  assert.match(String(b.stderr), /pass 2 of 2: dense ops/);
  const passes = /2 passes, each number their median; GFLOP\/s per pass: ([\d.]+), ([\d.]+)/.exec(String(b.stderr));
  assert.ok(passes !== null, String(b.stderr));
  const merged = JSON.parse(readFileSync(out, 'utf8')) as ProfileFile;
  assert.equal(merged.version, 1);
  assert.ok(Math.abs(merged.devices[0]!.peakFlops / 1e9 - (Number(passes[1]) + Number(passes[2])) / 2) <= 0.1, `${merged.devices[0]!.peakFlops} against ${passes[0]}`);
  const zero = run(dir, '--repeats', '0');
  assert.equal(zero.status, 1);
  assert.match(String(zero.stderr), /--repeats must be a whole number of at least 1/);

  const bad = run(dir, '--threads', 'many');
  assert.equal(bad.status, 1);
  assert.match(String(bad.stderr), /--threads must be an integer/);
});
