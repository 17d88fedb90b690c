// Owns: measuring a decode step's dense work (every layer's ops and the LM head of the built-in
// model, one thread) at 1-16 rows with the native small-row kernel and with OpenBLAS's sgemm in
// its place (HETIS_NATIVE_SMALL_ROWS=0), in alternating fresh processes so both see the same
// moments of a shared machine. Must not: be part of the test run; it prints one JSON line per
// row count and asserts nothing.
//
// Run: npx tsx bench/small-rows.ts [--rounds N]   (each round: one process of each kind)

import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/util/fit.js';

const root = resolve(import.meta.dirname ?? '.', '..');
const ROWS = [1, 2, 3, 4, 6, 8, 9, 16];

if (process.env['HETIS_SMALL_ROWS_CHILD'] === '1') {
  const { openModel } = await import('../src/cli/open-model.js');
  const { DenseRunner } = await import('../src/runtime/dense.js');
  const { getKernels } = await import('../src/runtime/kernel-select.js');
  const { denseSweep, makeClock, sample, sweepSeconds } = await import('../src/runtime/profile-ops.js');
  const model = openModel(join(root, 'models/hetis-kjv.gguf'), undefined).model;
  const kernels = getKernels('native');
  kernels.setThreads(1);
  const runner = new DenseRunner(model, kernels);
  const layers = model.spec.nLayers;
  const out: Record<number, number> = {};
  for (const n of ROWS) {
    const sweep = denseSweep(makeClock('cpu'), runner, n);
    const cost = (t: Parameters<typeof sweepSeconds>[0]): number => sweepSeconds(t, layers);
    sample({ warmup: 0, min: 30, max: 30, seconds: 0 }, sweep, cost);
    out[n] = median(sample({ warmup: 2, min: 20, max: 2000, seconds: 0.4, pauseMs: 0.2 }, sweep, cost).map(cost));
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
  const runs: Record<'kernel' | 'openblas', Record<number, number>[]> = { kernel: [], openblas: [] };
  for (let r = 0; r < rounds; r++) {
    for (const kind of ['kernel', 'openblas'] as const) {
      const env = { ...process.env, HETIS_SMALL_ROWS_CHILD: '1', HETIS_NATIVE_SMALL_ROWS: kind === 'kernel' ? '1' : '0' };
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench/small-rows.ts')], { env, encoding: 'utf8', timeout: 120_000 });
      if (child.status !== 0) throw new Error(`the ${kind} process failed: ${child.stderr.split('\n').slice(-3).join(' ')}`);
      runs[kind].push(JSON.parse(child.stdout.trim().split('\n').pop()!) as Record<number, number>);
      process.stderr.write(`[small-rows] round ${r + 1}/${rounds}: ${kind} done\n`);
    }
  }
  for (const n of ROWS) {
    const kernel = median(runs.kernel.map((x) => x[n]!)), openblas = median(runs.openblas.map((x) => x[n]!));
    process.stdout.write(`${JSON.stringify({ bench: 'small-rows', rows: n, kernelMs: +(kernel * 1e3).toFixed(3), openblasMs: +(openblas * 1e3).toFixed(3), speedup: +(openblas / kernel).toFixed(2), rounds })}\n`);
  }
}
