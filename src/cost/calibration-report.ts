// Owns: the calibration report: every usable Vidur profile compared with the roofline (and with
// fitting, the fitted device and its cross-validation), the links by topology and scope, and how
// well tables interpolate between grid points. Must not: fit or evaluate anything itself
// (calibrate.ts does), read files or print.

import { getLink } from '../hardware/catalog.js';
import type { CatalogLinkKind, DeviceSpec, LinkSpec } from '../hardware/types.js';
import {
  deviceParams, evaluateCompute, evaluateLink, fitDevice, fitLink, pooledLayer, pooledLayerMape,
  type ComputeEvaluation, type DeviceParams, type LinkEvaluation,
} from './calibrate.js';
import { interpolate, type InterpolationMode } from './table.js';
import { vidurDeviceProfiles, type VidurData } from './vidur.js';

export interface ModelReport {
  deviceFolder: string;
  device: string;
  model: string;
  rows: number;
  tps: number[];
  tokens: [number, number];
  before: ComputeEvaluation;
  after?: ComputeEvaluation;
}

export interface DeviceFitReport {
  device: string;
  deviceFolder: string;
  models: string[];
  before: DeviceParams;
  after: DeviceParams;
  layerMapeBefore: number;
  layerMapeAfter: number;
}

export interface CrossValidationReport {
  device: string;
  train: string;
  test: string[];
  params: DeviceParams;
  trainLayerMape: number;
  testLayerMape: number;
}

export interface LinkReport {
  topology: string;
  scope: 'intra-node' | 'inter-node';
  /** The catalog kind compared and fitted (intra-node rows of a known topology). */
  kind: CatalogLinkKind | undefined;
  rows: number;
  before?: LinkEvaluation;
  after?: LinkEvaluation;
  fitted?: LinkSpec;
}

export interface InterpolationReport {
  /** Every other grid point held out and predicted from its neighbours. */
  dense: InterpolationError;
  /** Only powers-of-two token counts kept (a profiler's usual grid); every other point predicted. */
  sparse: InterpolationError;
}

export interface InterpolationError {
  points: number;
  linear: number;
  loglog: number;
}

export interface CalibrationReport {
  root: string;
  models: ModelReport[];
  fits: DeviceFitReport[];
  crossValidation: CrossValidationReport[];
  links: LinkReport[];
  interpolation: InterpolationReport | undefined;
  /** Dense-layer MAPE pooled over every row of every profile with a catalog device. */
  overall: { before: number; after?: number; points: number };
  notes: string[];
}

export interface CalibrateOptions {
  fit: boolean;
  /** Override the GEMM tiles tried (tests use fewer). */
  tiles?: readonly number[];
}

/**
 * How well tables interpolate between grid points, measured on the Vidur tables: grid points are
 * held out and predicted from the kept ones, linearly and log-log.
 */
export function interpolationCheck(data: VidurData): InterpolationReport | undefined {
  const tables = vidurDeviceProfiles(data).flatMap((p) => p.dense);
  const check = (keep: (x: number, i: number) => boolean): InterpolationError => {
    const err: Record<InterpolationMode, number> = { linear: 0, loglog: 0 };
    let points = 0;
    for (const t of tables) {
      const kept = t.tokens.map((x, i) => keep(x, i));
      const xs = t.tokens.filter((_, i) => kept[i]);
      const ys = t.seconds.filter((_, i) => kept[i]);
      if (xs.length < 2) continue;
      t.tokens.forEach((x, i) => {
        const truth = t.seconds[i]!;
        if (kept[i] || !(truth > 0) || x < xs[0]! || x > xs[xs.length - 1]!) return;
        points++;
        for (const mode of ['linear', 'loglog'] as const) err[mode] += Math.abs(interpolate(xs, ys, x, mode)! - truth) / truth;
      });
    }
    return { points, linear: err.linear / points, loglog: err.loglog / points };
  };
  const dense = check((_, i) => i % 2 === 0);
  const sparse = check((x) => Number.isInteger(Math.log2(x)));
  return dense.points === 0 ? undefined : { dense, sparse };
}

/** Compares (and with opts.fit, fits) every usable profile in `data`. */
export function calibrate(data: VidurData, opts: CalibrateOptions): CalibrationReport {
  const notes = [...data.notes];
  const usable = data.compute.filter((p) => p.device !== undefined);
  const devices = [...new Set(usable.map((p) => p.device!.name))];
  const fitted = new Map<string, DeviceSpec>();
  const fits: DeviceFitReport[] = [];
  const crossValidation: CrossValidationReport[] = [];

  for (const name of devices) {
    const mine = usable.filter((p) => p.device!.name === name);
    const start = mine[0]!.device!;
    if (!opts.fit) continue;
    const fit = fitDevice(start, mine, opts.tiles);
    fitted.set(name, fit.device);
    fits.push({
      device: name, deviceFolder: mine[0]!.deviceFolder, models: mine.map((p) => p.model),
      before: deviceParams(start), after: deviceParams(fit.device),
      layerMapeBefore: pooledLayerMape(start, mine), layerMapeAfter: pooledLayerMape(fit.device, mine),
    });
    if (mine.length < 2) continue;
    for (const train of mine) {
      const test = mine.filter((p) => p !== train);
      const cv = fitDevice(start, [train], opts.tiles).device;
      crossValidation.push({
        device: name, train: train.model, test: test.map((p) => p.model), params: deviceParams(cv),
        trainLayerMape: pooledLayerMape(cv, [train]), testLayerMape: pooledLayerMape(cv, test),
      });
    }
  }

  const models: ModelReport[] = usable.map((p) => {
    const after = fitted.get(p.device!.name);
    const tokens = p.rows.map((r) => r.tokens);
    return {
      deviceFolder: p.deviceFolder, device: p.device!.name, model: p.model, rows: p.rows.length,
      tps: [...new Set(p.rows.map((r) => r.tp))].sort((a, b) => a - b),
      tokens: [Math.min(...tokens), Math.max(...tokens)],
      before: evaluateCompute(p.device!, p),
      ...(after !== undefined ? { after: evaluateCompute(after, p) } : {}),
    };
  });

  const before = pooledLayer(usable.map((p) => ({ device: p.device!, profile: p })));
  const after = pooledLayer(usable.flatMap((p) => { const f = fitted.get(p.device!.name); return f !== undefined ? [{ device: f, profile: p }] : []; }));
  const overall: CalibrationReport['overall'] = {
    before: before?.mape ?? NaN, points: before?.points ?? 0,
    ...(after !== undefined ? { after: after.mape } : {}),
  };

  const links: LinkReport[] = [];
  for (const n of data.network) {
    const intra = n.rows.filter((r) => r.ranks === r.devicesPerNode);
    const inter = n.rows.filter((r) => r.ranks !== r.devicesPerNode);
    if (intra.length > 0) {
      const kind = n.intraLink;
      const catalog = kind === undefined ? undefined : getLink(kind);
      const report: LinkReport = { topology: n.topology, scope: 'intra-node', kind, rows: intra.length };
      if (catalog !== undefined) report.before = evaluateLink(catalog, intra);
      if (opts.fit) {
        const start = catalog ?? { kind: 'custom' as const, latency: 10e-6, bandwidth: 100e9 };
        report.fitted = fitLink(start, intra, catalog?.bandwidth);
        report.after = evaluateLink(report.fitted, intra);
      }
      links.push(report);
    }
    if (inter.length > 0 && opts.fit) {
      // Between nodes (InfiniBand on a DGX): no catalog kind to compare; fitted for the record.
      const fittedInter = fitLink({ kind: 'custom', latency: 10e-6, bandwidth: 10e9 }, inter);
      links.push({ topology: n.topology, scope: 'inter-node', kind: undefined, rows: inter.length, fitted: fittedInter, after: evaluateLink(fittedInter, inter) });
    }
  }

  return {
    root: data.root, models, fits, crossValidation, links,
    interpolation: interpolationCheck(data), overall, notes,
  };
}
