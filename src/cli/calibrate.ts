// Owns: the `hetis calibrate` command: read a Vidur-format profile folder, compare (and fit) the
// cost model, print a table or JSON lines. Must not: compute errors or fits (cost/calibrate.ts does).

import { resolve } from 'node:path';
import type { ComputeEvaluation, DeviceParams, LinkEvaluation } from '../cost/calibrate.js';
import { calibrate, type CalibrationReport } from '../cost/calibration-report.js';
import { readVidurDir } from '../cost/vidur.js';

export interface CalibrateFlags {
  vidur: string;
  fit?: boolean;
  json?: boolean;
}

export function calibrateCommand(f: CalibrateFlags): void {
  const data = readVidurDir(resolve(f.vidur));
  const report = calibrate(data, { fit: f.fit === true });
  if (f.json) {
    for (const note of report.notes) process.stderr.write(`hetis calibrate: ${note}\n`);
    for (const line of jsonLines(report)) process.stdout.write(`${JSON.stringify(line)}\n`);
  } else {
    process.stdout.write(textReport(report));
  }
}

/** 6 significant digits; NaN becomes null in JSON. */
const r6 = (x: number): number => Number(x.toPrecision(6));

function params(p: DeviceParams): Record<string, number> {
  return {
    compute_efficiency: r6(p.computeEfficiency), memory_efficiency: r6(p.memoryEfficiency),
    elementwise_efficiency: r6(p.elementwiseEfficiency), kernel_overhead_s: r6(p.kernelOverhead), gemm_token_tile: p.gemmTokenTile,
  };
}

/** One object per (device, model, op), then layers, fits, cross-validation, links; last the overall line. */
export function jsonLines(report: CalibrationReport): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const m of report.models) {
    for (const op of m.before.ops) {
      const after = m.after?.ops.find((o) => o.op === op.op);
      out.push({
        scope: 'op', device: m.device, device_folder: m.deviceFolder, model: m.model, op: op.op, vidur_op: op.vidurOp,
        points: op.points, mape_before: r6(op.mape), ...(after !== undefined ? { mape_after: r6(after.mape) } : {}),
      });
    }
  }
  for (const m of report.models) {
    out.push({
      scope: 'layer', device: m.device, model: m.model, points: m.before.layerPoints,
      mape_before: r6(m.before.layerMape), ...(m.after !== undefined ? { mape_after: r6(m.after.layerMape) } : {}),
      small_tokens: `<= 128`, small_mape_before: r6(m.before.smallLayerMape),
      ...(m.after !== undefined ? { small_mape_after: r6(m.after.smallLayerMape) } : {}),
    });
  }
  for (const f of report.fits) {
    out.push({
      scope: 'fit', device: f.device, models: f.models, before: params(f.before), after: params(f.after),
      layer_mape_before: r6(f.layerMapeBefore), layer_mape_after: r6(f.layerMapeAfter),
    });
  }
  for (const c of report.crossValidation) {
    out.push({
      scope: 'cross_validation', device: c.device, train: c.train, test: c.test, params: params(c.params),
      train_layer_mape: r6(c.trainLayerMape), test_layer_mape: r6(c.testLayerMape),
    });
  }
  for (const l of report.links) {
    const collectives = new Set([...(l.before?.collectives ?? []), ...(l.after?.collectives ?? [])].map((c) => c.collective));
    for (const c of collectives) {
      const b = l.before?.collectives.find((x) => x.collective === c);
      const a = l.after?.collectives.find((x) => x.collective === c);
      out.push({
        scope: 'link', topology: l.topology, link_scope: l.scope, kind: l.kind ?? null, collective: c, points: (b ?? a)!.points,
        ...(b !== undefined ? { mape_before: r6(b.mape) } : {}), ...(a !== undefined ? { mape_after: r6(a.mape) } : {}),
      });
    }
    if (l.fitted !== undefined) {
      out.push({
        scope: 'link_fit', topology: l.topology, link_scope: l.scope, kind: l.kind ?? null, latency_s: r6(l.fitted.latency),
        bandwidth_bytes_per_s: r6(l.fitted.bandwidth), all_reduce_efficiency: r6(l.fitted.allReduceEfficiency ?? 1),
      });
    }
  }
  if (report.interpolation !== undefined) {
    const i = report.interpolation;
    for (const [grid, e] of [['every_other_point', i.dense], ['powers_of_two', i.sparse]] as const) {
      out.push({ scope: 'interpolation', grid, held_out_points: e.points, linear_mape: r6(e.linear), loglog_mape: r6(e.loglog) });
    }
  }
  out.push({ scope: 'overall', dense_layer_mape: r6(report.overall.after ?? report.overall.before) });
  return out;
}

const pct = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '-' : `${(100 * x).toFixed(1)}%`);
const us = (s: number): string => `${(s * 1e6).toFixed(2)} us`;
const gbs = (b: number): string => `${(b / 1e9).toFixed(1)} GB/s`;

function describe(p: DeviceParams): string {
  return `computeEfficiency ${p.computeEfficiency.toFixed(3)}, memoryEfficiency ${p.memoryEfficiency.toFixed(3)}, ` +
    `elementwiseEfficiency ${p.elementwiseEfficiency.toFixed(3)}, kernelOverhead ${us(p.kernelOverhead)}, gemmTokenTile ${p.gemmTokenTile}`;
}

function collectiveRows(before: LinkEvaluation | undefined, after: LinkEvaluation | undefined): string[] {
  const names = new Set([...(before?.collectives ?? []), ...(after?.collectives ?? [])].map((c) => c.collective));
  return [...names].map((c) => {
    const b = before?.collectives.find((x) => x.collective === c);
    const a = after?.collectives.find((x) => x.collective === c);
    return `  ${c.padEnd(12)} ${String((b ?? a)!.points).padStart(6)} points   before ${pct(b?.mape).padStart(7)}   after ${pct(a?.mape).padStart(7)}`;
  });
}

function layerLine(label: string, b: ComputeEvaluation, a: ComputeEvaluation | undefined, pick: (e: ComputeEvaluation) => number): string {
  return `  ${label.padEnd(44)} ${pct(pick(b)).padStart(8)} ${pct(a === undefined ? undefined : pick(a)).padStart(8)}`;
}

export function textReport(report: CalibrationReport): string {
  const lines: string[] = [`Vidur profiles under ${report.root}`];
  for (const note of report.notes) lines.push(`note: ${note}`);
  for (const m of report.models) {
    lines.push('', `${m.device} (${m.deviceFolder}) ${m.model}: ${m.rows} rows, tp ${m.tps.join('/')}, tokens ${m.tokens[0]}..${m.tokens[1]}`);
    lines.push(`  ${'op'.padEnd(16)} ${'Vidur op'.padEnd(27)} ${'MAPE before'.padStart(8)} ${'after'.padStart(8)}`);
    for (const op of m.before.ops) {
      const a = m.after?.ops.find((o) => o.op === op.op);
      lines.push(`  ${op.op.padEnd(16)} ${op.vidurOp.padEnd(27)} ${pct(op.mape).padStart(8)} ${pct(a?.mape).padStart(8)}`);
    }
    lines.push(layerLine('dense layer (9 ops, add x2), all rows', m.before, m.after, (e) => e.layerMape));
    lines.push(layerLine('dense layer, tokens <= 128', m.before, m.after, (e) => e.smallLayerMape));
    for (const t of m.before.byTp) {
      const a = m.after?.byTp.find((x) => x.tp === t.tp);
      lines.push(`  ${`dense layer, tp ${t.tp}`.padEnd(44)} ${pct(t.mape).padStart(8)} ${pct(a?.mape).padStart(8)}`);
    }
  }
  for (const f of report.fits) {
    lines.push('', `fit ${f.device} on ${f.models.join(', ')}:`);
    lines.push(`  before: ${describe(f.before)}`, `  after:  ${describe(f.after)}`);
    lines.push(`  dense-layer MAPE ${pct(f.layerMapeBefore)} -> ${pct(f.layerMapeAfter)}`);
  }
  if (report.crossValidation.length > 0) {
    lines.push('', 'cross-validation (fit on one model, test on the others):');
    for (const c of report.crossValidation) {
      lines.push(`  ${c.device}: fit on ${c.train} (${pct(c.trainLayerMape)}) -> ${c.test.join(', ')}: ${pct(c.testLayerMape)}`);
      lines.push(`    ${describe(c.params)}`);
    }
  }
  for (const l of report.links) {
    lines.push('', `network ${l.topology} ${l.scope}${l.kind !== undefined ? ` -> ${l.kind}` : ' (no catalog kind)'}: ${l.rows} rows`);
    lines.push(...collectiveRows(l.before, l.after));
    if (l.fitted !== undefined) {
      lines.push(`  fitted: latency ${us(l.fitted.latency)}, bandwidth ${gbs(l.fitted.bandwidth)}, allReduceEfficiency ${(l.fitted.allReduceEfficiency ?? 1).toFixed(3)}`);
    }
  }
  if (report.interpolation !== undefined) {
    const i = report.interpolation;
    lines.push('', 'table interpolation (held-out grid points predicted from the rest):');
    lines.push(`  every other point kept: ${i.dense.points} points, linear ${pct(i.dense.linear)}, log-log ${pct(i.dense.loglog)}`);
    lines.push(`  powers of two kept:     ${i.sparse.points} points, linear ${pct(i.sparse.linear)}, log-log ${pct(i.sparse.loglog)}`);
  }
  lines.push('', `overall dense-layer MAPE (${report.overall.points} rows): before ${pct(report.overall.before)}` +
    (report.overall.after !== undefined ? `, after --fit ${pct(report.overall.after)}` : ''));
  return `${lines.join('\n')}\n`;
}
