// Calibration against Vidur-format profiles: the reader (units, ops, shapes), the fit (recovers
// the parameters a fixture was generated with), the fast evaluator (agrees with the roofline),
// the profiled model on converted tables, and `hetis calibrate` end to end, on the fixture and
// on the real A100 data in ../shared when it is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fitDevice, predictRows } from '../src/cost/calibrate.js';
import { calibrate } from '../src/cost/calibration-report.js';
import { createProfiledCostModel } from '../src/cost/profiled.js';
import { createRooflineCostModel, DENSE_OPS } from '../src/cost/roofline.js';
import { FP16 } from '../src/cost/types.js';
import { parseCsv, readVidurDir, vidurDeviceProfiles, vidurLinkProfiles, vidurModelSpec } from '../src/cost/vidur.js';
import { GPU_DEFAULTS, getDevice, getLink } from '../src/hardware/catalog.js';
import { nelderMead } from '../src/util/optimize.js';
import { FIXTURE_DEVICE, FIXTURE_LINK } from './fixtures/vidur/generate.js';
import { assertFileError, tempDir } from './helpers/files.js';
import { missingShared, repoRoot, sharedDir } from './helpers/shared.js';

const fixture = resolve(repoRoot, 'test/fixtures/vidur');
const realVidur = resolve(sharedDir, 'data/profiles/vidur');

function hetis(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], {
    cwd: repoRoot, encoding: 'utf8', timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

test('Nelder-Mead finds the Rosenbrock minimum and ignores NaN', () => {
  const rosen = (x: readonly number[]): number => 100 * (x[1]! - x[0]! ** 2) ** 2 + (1 - x[0]!) ** 2;
  const r = nelderMead(rosen, [-1.2, 1], { maxEvaluations: 5000 });
  assert.ok(Math.abs(r.x[0]! - 1) < 1e-4 && Math.abs(r.x[1]! - 1) < 1e-4, JSON.stringify(r));
  const guarded = nelderMead((x) => (x[0]! < 0 ? Number.NaN : (x[0]! - 2) ** 2), [1]);
  assert.ok(Math.abs(guarded.x[0]! - 2) < 1e-4);
});

test('the reader: devices, shapes, milliseconds to seconds, one timed add doubled, link rows in bytes', () => {
  const data = readVidurDir(fixture);
  assert.deepEqual(data.notes, []);
  assert.deepEqual(data.compute.map((p) => [p.deviceFolder, p.device?.name, p.model]), [
    ['a40', 'A40', 'test-org/tiny-gqa'], ['a40', 'A40', 'test-org/tiny-plain-mlp'],
  ]);
  const gqa = data.compute[0]!;
  assert.deepEqual(gqa.shape, { dim: 2048, ffnDim: 5632, nHeads: 16, nKvHeads: 4, headDim: 128, vocabSize: 32000, gatedMlp: true });
  assert.equal(data.compute[1]!.shape.gatedMlp, false);
  const { header, rows } = parseCsv(readFileSync(join(fixture, 'compute/a40/test-org/tiny-gqa/mlp.csv'), 'utf8'), 'mlp.csv');
  const col = (name: string): number => header.indexOf(name);
  const first = rows[0]!;
  assert.equal(gqa.rows[0]!.tokens, Number(first[col('num_tokens')]));
  assert.ok(rel(gqa.rows[0]!.seconds.qkv!, Number(first[col('time_stats.attn_pre_proj.median')]) * 1e-3) < 1e-12);
  assert.ok(rel(gqa.rows[0]!.seconds.add!, 2 * Number(first[col('time_stats.add.median')]) * 1e-3) < 1e-12);
  assert.equal(data.network.length, 1);
  assert.equal(data.network[0]!.intraLink, 'nvlink-a100');
  assert.ok(data.network[0]!.rows.some((r) => r.bytes === 64 << 20));
});

test('--fit recovers the parameters the fixture was generated with, and the link it was generated with', () => {
  const report = calibrate(readVidurDir(fixture), { fit: true });
  assert.equal(report.fits.length, 1);
  const after = report.fits[0]!.after;
  const want = FIXTURE_DEVICE.params;
  assert.equal(after.gemmTokenTile, want.gemmTokenTile);
  for (const k of ['computeEfficiency', 'memoryEfficiency', 'elementwiseEfficiency', 'kernelOverhead'] as const) {
    assert.ok(rel(after[k], want[k]) < 1e-3, `${k}: fitted ${after[k]}, generated with ${want[k]}`);
  }
  assert.ok(report.overall.before > 0.05, 'the catalog defaults are not the fixture\'s parameters');
  assert.ok(report.overall.after! < 1e-6);
  // Cross-validation: each model alone determines the device.
  assert.equal(report.crossValidation.length, 2);
  for (const cv of report.crossValidation) assert.ok(cv.testLayerMape < 1e-6, `${cv.train} -> ${cv.test}: ${cv.testLayerMape}`);
  const link = report.links.find((l) => l.scope === 'intra-node')!;
  assert.equal(link.kind, 'nvlink-a100');
  assert.ok(rel(link.fitted!.latency, FIXTURE_LINK.latency) < 1e-3);
  assert.ok(rel(link.fitted!.bandwidth, FIXTURE_LINK.bandwidth) < 1e-3);
  assert.ok(rel(link.fitted!.allReduceEfficiency!, FIXTURE_LINK.allReduceEfficiency) < 1e-3);
  assert.ok(link.after!.mape < 1e-6 && link.before!.mape > 0.05);
});

test('the fit\'s fast evaluator agrees with the roofline cost model op by op', () => {
  const data = readVidurDir(fixture);
  const device = { ...getDevice('A40'), ...FIXTURE_DEVICE.params };
  for (const p of data.compute) {
    const cm = createRooflineCostModel(vidurModelSpec(p), FP16);
    for (const row of predictRows(device, p)) {
      const parts = cm.denseLayer(device, row.tokens, row.tp).parts;
      DENSE_OPS.forEach((op, i) => assert.ok(rel(row.predicted[i]!, parts[op]!) < 1e-12, `${op} at ${row.tokens}`));
    }
  }
  // Starting anywhere, one tile: the fit lands on the generating parameters.
  const start = { ...getDevice('A40'), computeEfficiency: 0.3, memoryEfficiency: 0.95, kernelOverhead: 20e-6 };
  const fit = fitDevice(start, data.compute, [64]);
  assert.ok(rel(fit.device.computeEfficiency, 0.62) < 1e-3);
});

test('Vidur tables drive the profiled model: measured values at grid points, roofline-scaled outside', () => {
  const data = readVidurDir(fixture);
  const profiles = vidurDeviceProfiles(data);
  assert.equal(profiles.length, 2);
  const p = data.compute[0]!;
  const cm = createProfiledCostModel(createRooflineCostModel(vidurModelSpec(p), FP16), profiles, vidurLinkProfiles(data));
  const a40 = getDevice('A40');
  for (const row of p.rows.filter((_, i) => i % 5 === 0)) {
    const e = cm.denseLayer(a40, row.tokens, row.tp);
    for (const op of DENSE_OPS) {
      assert.ok(rel(e.parts[op]!, row.seconds[op]!) < 1e-9, `${op} at ${row.tokens} tokens, tp ${row.tp}`);
      assert.equal(e.source![op], 'table');
    }
  }
  assert.equal(cm.denseLayer(a40, 8192, 1).source!['qkv'], 'table-edge');
  const link = vidurLinkProfiles(data)[0]!;
  assert.ok(rel(link.latency, FIXTURE_LINK.latency) < 1e-6 && rel(link.bandwidth, FIXTURE_LINK.bandwidth) < 1e-6);
  assert.ok(rel(cm.sendRecv(getLink('nvlink-a100'), 1 << 20).seconds, FIXTURE_LINK.latency + (1 << 20) / FIXTURE_LINK.bandwidth) < 1e-9);
});

test('bad folders and files: one error naming the path', () => {
  const dir = tempDir('vidur');
  assertFileError(() => readVidurDir(join(dir, 'missing')), join(dir, 'missing'), /no such folder/);
  assertFileError(() => readVidurDir(dir), dir, /no Vidur profiles here/);
  const model = join(dir, 'compute/a100/org/m');
  mkdirSync(model, { recursive: true });
  writeFileSync(join(model, 'mlp.csv'), 'time_stats.add.median,n_head\n0.1,32\n');
  assertFileError(() => readVidurDir(dir), join(model, 'mlp.csv'), /missing columns n_kv_head, n_embd/);
  const r = hetis('calibrate', '--vidur', join(dir, 'nowhere'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^hetis: .*nowhere: no such folder\n$/);
});

test('hetis calibrate --fit --json on the fixture: op lines, then the rest, last the overall line', () => {
  const r = hetis('calibrate', '--vidur', fixture, '--fit', '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const ops = lines.filter((l) => l['scope'] === 'op');
  assert.equal(ops.length, 2 * 9);
  assert.deepEqual(lines.slice(0, ops.length), ops, 'op lines come first');
  for (const l of ops) assert.ok(typeof l['mape_before'] === 'number' && typeof l['mape_after'] === 'number');
  const last = lines[lines.length - 1]!;
  assert.deepEqual(Object.keys(last), ['scope', 'dense_layer_mape']);
  assert.equal(last['scope'], 'overall');
  assert.ok((last['dense_layer_mape'] as number) < 1e-6);
  const fit = lines.find((l) => l['scope'] === 'fit')!;
  assert.equal((fit['after'] as Record<string, number>)['gemm_token_tile'], 64);
  const text = hetis('calibrate', '--vidur', fixture);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /dense layer \(9 ops, add x2\), all rows/);
  assert.match(text.stdout, /overall dense-layer MAPE \(96 rows\): before \d+\.\d%\n$/);
});

test('real A100 data: dense layer within 10% after --fit, across models, and the catalog ships the fit', (t) => {
  const skip = missingShared(join(realVidur, 'compute'));
  if (skip) return t.skip(skip);
  const r = hetis('calibrate', '--vidur', realVidur, '--fit', '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const overall = lines[lines.length - 1]!;
  assert.equal(overall['scope'], 'overall');
  assert.ok((overall['dense_layer_mape'] as number) < 0.10, `overall ${overall['dense_layer_mape']}`);
  const layers = lines.filter((l) => l['scope'] === 'layer');
  assert.equal(layers.length, 2);
  for (const l of layers) assert.ok((l['mape_after'] as number) < 0.10, JSON.stringify(l));
  const cv = lines.filter((l) => l['scope'] === 'cross_validation');
  assert.equal(cv.length, 2);
  for (const c of cv) assert.ok((c['test_layer_mape'] as number) < 0.10, JSON.stringify(c));
  // The catalog defaults are this fit (rounded to three digits).
  const after = lines.find((l) => l['scope'] === 'fit')!['after'] as Record<string, number>;
  assert.equal(after['gemm_token_tile'], GPU_DEFAULTS.gemmTokenTile);
  assert.ok(rel(after['compute_efficiency']!, GPU_DEFAULTS.computeEfficiency) < 0.005);
  assert.ok(rel(after['memory_efficiency']!, GPU_DEFAULTS.memoryEfficiency) < 0.005);
  assert.ok(rel(after['elementwise_efficiency']!, GPU_DEFAULTS.elementwiseEfficiency) < 0.005);
  assert.ok(rel(after['kernel_overhead_s']!, GPU_DEFAULTS.kernelOverhead) < 0.01);
  const linkFit = lines.find((l) => l['scope'] === 'link_fit' && l['kind'] === 'nvlink-a100')!;
  const nv = getLink('nvlink-a100');
  assert.ok(rel(linkFit['bandwidth_bytes_per_s'] as number, nv.bandwidth) < 0.005);
  assert.ok(rel(linkFit['latency_s'] as number, nv.latency) < 0.01);
  assert.ok(rel(linkFit['all_reduce_efficiency'] as number, nv.allReduceEfficiency!) < 0.005);
  // Vidur's n_head etc. are global sizes: one shape per file across all TP degrees.
  const data = readVidurDir(realVidur);
  for (const p of data.compute) assert.deepEqual([...new Set(p.rows.map((x) => x.tp))].sort(), [1, 2, 4, 8]);
});
