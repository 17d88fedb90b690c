// hetis simulate end to end: the JSON lines it promises, the same seed giving the same results,
// the files of --out (CSV, JSON, SVG and PNG charts), and each system's deployment on the paper cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCluster } from '../src/hardware/cluster.js';
import { resolveModelSpec } from '../src/model/catalog.js';
import { createRooflineCostModel } from '../src/cost/roofline.js';
import { FP16 } from '../src/cost/types.js';
import { DEFAULT_PLANNER_OPTIONS } from '../src/planner/types.js';
import { systemConfigs } from '../src/sim/simulate.js';
import { loadPngRenderer } from '../src/sim/png.js';
import { repoRoot } from './helpers/shared.js';

function simulate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'simulate', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
}

test('hetis simulate --json prints one line per system and rate with the promised fields; same seed, same lines', () => {
  const args = ['--cluster', 'paper', '--model', 'llama-2-13b', '--workload', 'sharegpt', '--rate', '4,8', '--count', '150', '--systems', 'hetis,homogeneous', '--seed', '3', '--json'];
  const a = simulate(...args);
  assert.equal(a.status, 0, a.stderr);
  const lines = a.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
  assert.equal(lines.length, 4);
  for (const l of lines) {
    for (const k of ['system', 'rate', 'throughput_tok_s', 'ttft_p95_s', 'tpot_p95_s', 'completed', 'dropped']) assert.ok(k in l, `missing ${k}`);
    assert.equal(l['completed'], 150);
    assert.equal(l['dropped'], 0);
  }
  assert.deepEqual(lines.map((l) => [l['system'], l['rate']]), [['hetis', 4], ['homogeneous', 4], ['hetis', 8], ['homogeneous', 8]]);
  const b = simulate(...args);
  assert.equal(b.stdout, a.stdout, 'same seed, same results');
  const bad = simulate('--cluster', 'paper', '--model', 'llama-2-13b', '--systems', 'hetis,vllm');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown system vllm/);
});

test('hetis simulate --out writes results.json, results.csv, request CSVs and the charts (PNG when resvg loads)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hetis-sim-'));
  try {
    const r = simulate('--cluster', 'paper', '--model', 'llama-2-13b', '--workload', 'sharegpt', '--rate', '4,8', '--count', '100', '--systems', 'hetis,homogeneous', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 4, 'the table lines stay');
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 5);
    assert.match(csv[0]!, /^system,rate,throughput_tok_s,/);
    assert.match(csv[1]!, /^hetis,4,/);
    assert.equal((JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as unknown[]).length, 4);
    for (const f of ['requests-hetis-4.csv', 'requests-homogeneous-8.csv']) assert.ok(existsSync(join(dir, f)), f);
    const charts = ['throughput-vs-rate', 'ttft-cdf', 'tpot-cdf', 'kv-use-hetis', 'kv-use-homogeneous', 'utilisation-hetis', 'utilisation-homogeneous'];
    for (const c of charts) {
      const svg = readFileSync(join(dir, `${c}.svg`), 'utf8');
      assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'), c);
    }
    assert.match(readFileSync(join(dir, 'kv-use-hetis.svg'), 'utf8'), />replica0\/primaries</);
    assert.match(readFileSync(join(dir, 'utilisation-hetis.svg'), 'utf8'), />replica0\/primaries</);
    if ('render' in loadPngRenderer()) {
      for (const c of charts) assert.deepEqual([...readFileSync(join(dir, `${c}.png`)).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${c}.png`);
      assert.doesNotMatch(r.stderr, /warning/);
    } else {
      for (const c of charts) assert.ok(!existsSync(join(dir, `${c}.png`)), `${c}.png`);
      assert.match(r.stderr, /warning: PNG output unavailable/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deployments on the paper cluster: attention workers for Hetis, none for the homogeneous baseline and the ablation', () => {
  const cluster = loadCluster('paper');
  const cost = createRooflineCostModel(resolveModelSpec('llama-2-70b'), FP16);
  const w = { name: 'sharegpt', promptTokens: 161, outputTokens: 338 };
  const hetis = systemConfigs('hetis', cluster, cost, w, DEFAULT_PLANNER_OPTIONS).configs;
  const ids = hetis[0]!.devices.map((d) => d.id);
  assert.ok(ids.includes('p100/0') && ids.includes('3090-a/1'), ids.join(','));
  assert.equal(hetis[0]!.stages.reduce((a, s) => a + s.layers, 0), 80);
  for (const sys of ['homogeneous', 'hetis-no-attn-workers'] as const) {
    const c = systemConfigs(sys, cluster, cost, w, DEFAULT_PLANNER_OPTIONS).configs;
    assert.ok(c.every((cfg) => cfg.devices.length === 1 && cfg.devices[0]!.primary), sys);
    assert.ok(c.every((cfg) => cfg.stages.every((s) => s.spec.name === 'A100-80GB')), sys);
  }
  const hexgen = systemConfigs('hexgen', cluster, cost, w, DEFAULT_PLANNER_OPTIONS);
  assert.ok(hexgen.plan.devices.every((d) => d.role === 'primary'), 'hexgen: every device runs layers');
  assert.equal(hexgen.configs.length, 1);
  assert.equal(hexgen.configs[0]!.devices.length, 1, 'hexgen: KV stays with its layer\'s stage');
  assert.equal(hexgen.configs[0]!.stages.reduce((a, s) => a + s.layers, 0), 80);
  assert.equal(systemConfigs('hetis-static-split', cluster, cost, w, DEFAULT_PLANNER_OPTIONS).configs[0]!.placement, 'memory');
  assert.equal(systemConfigs('hetis-no-redispatch', cluster, cost, w, DEFAULT_PLANNER_OPTIONS).configs[0]!.redispatch.enabled, false);
});
