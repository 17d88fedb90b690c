// Owns: comparing the roofline with measured Vidur-format profiles (MAPE per op, per dense layer,
// per link) and fitting a device's efficiencies and a link's latency/bandwidth to them.
// Must not: read files or print (vidur.ts reads, cli/calibrate.ts prints), or assemble the whole
// report (calibration-report.ts).
//
// The dense layer is the sum of the nine DenseOps of one layer on one rank, with `add` counted
// TWICE (a Llama block runs two residual adds of the same shape; Vidur times one of them).

import { assert } from '../util/errors.js';
import { nelderMead } from '../util/optimize.js';
import type { DeviceSpec, LinkSpec } from '../hardware/types.js';
import { denseLayerWork, ringAllReduceParts, type OpWork } from './roofline.js';
import { FP16, type DenseOp } from './types.js';
import {
  VIDUR_OPS, vidurModelSpec,
  type VidurCollective, type VidurComputeProfile, type VidurNetworkRow,
} from './vidur.js';

/** Batches of at most this many tokens (decode-sized) get their own dense-layer MAPE. */
export const SMALL_TOKENS = 128;

/** GEMM token tiles the fit tries (1 = no rounding). */
export const TILE_CANDIDATES: readonly number[] = [1, 32, 64, 128, 256];

export interface OpError {
  op: DenseOp;
  vidurOp: string;
  points: number;
  /** Mean absolute percentage error as a fraction (0.1 = 10%). */
  mape: number;
}

export interface ComputeEvaluation {
  /** MAPE of the dense-layer total over every row that timed all ops. */
  layerMape: number;
  layerPoints: number;
  /** The same over rows with tokens <= SMALL_TOKENS. */
  smallLayerMape: number;
  smallPoints: number;
  byTp: { tp: number; mape: number; points: number }[];
  ops: OpError[];
}

/** The device parameters calibration fits. */
export type DeviceParams = Pick<DeviceSpec, 'computeEfficiency' | 'memoryEfficiency' | 'kernelOverhead'> & {
  elementwiseEfficiency: number;
  gemmTokenTile: number;
};

export function deviceParams(d: DeviceSpec): DeviceParams {
  return {
    computeEfficiency: d.computeEfficiency, memoryEfficiency: d.memoryEfficiency,
    elementwiseEfficiency: d.elementwiseEfficiency ?? d.memoryEfficiency, kernelOverhead: d.kernelOverhead,
    gemmTokenTile: d.gemmTokenTile ?? 1,
  };
}

/**
 * A profile flattened for fast evaluation (the fit evaluates every row thousands of times):
 * op-rows in row-major order, nOps per row, the OpWork fields as typed arrays.
 */
interface Prepared {
  profile: VidurComputeProfile;
  nOps: number;
  rowTokens: Float64Array;
  rowTp: Float64Array;
  /** Sum of the measured ops of a row, or NaN when an op was not timed. */
  rowLayer: Float64Array;
  cls: Uint8Array; // 0 gemm, 1 stream, 2 rowwise
  tokens: Float64Array;
  flopsPerToken: Float64Array;
  bytes: Float64Array;
  kernels: Float64Array;
  measured: Float64Array; // NaN when not timed
  /** Mean share of each op in the measured layer: weights op errors in the fit objective. */
  share: number[];
}

const CLS: Record<OpWork['cls'], number> = { gemm: 0, stream: 1, rowwise: 2 };

function prepare(p: VidurComputeProfile): Prepared {
  const model = vidurModelSpec(p);
  const nOps = VIDUR_OPS.length;
  const nRows = p.rows.length;
  const size = nRows * nOps;
  const out: Prepared = {
    profile: p, nOps, rowTokens: new Float64Array(nRows), rowTp: new Float64Array(nRows), rowLayer: new Float64Array(nRows),
    cls: new Uint8Array(size), tokens: new Float64Array(size), flopsPerToken: new Float64Array(size), bytes: new Float64Array(size),
    kernels: new Float64Array(size), measured: new Float64Array(size), share: new Array<number>(nOps).fill(0),
  };
  let complete = 0;
  p.rows.forEach((r, i) => {
    const works = denseLayerWork(model, FP16, r.tokens, r.tp);
    assert(works.length === nOps, 'denseLayerWork and VIDUR_OPS must list the same ops');
    out.rowTokens[i] = r.tokens;
    out.rowTp[i] = r.tp;
    let layer = 0;
    works.forEach((w, j) => {
      assert(w.op === VIDUR_OPS[j]!.op, 'denseLayerWork and VIDUR_OPS must list the ops in one order');
      const k = i * nOps + j;
      const m = r.seconds[w.op as DenseOp];
      out.cls[k] = CLS[w.cls];
      out.tokens[k] = w.tokens;
      out.flopsPerToken[k] = w.flopsPerToken;
      out.bytes[k] = w.bytes;
      out.kernels[k] = w.kernels;
      out.measured[k] = m !== undefined && m > 0 ? m : NaN;
      layer += out.measured[k]!;
    });
    out.rowLayer[i] = layer;
    if (Number.isNaN(layer)) return;
    complete++;
    for (let j = 0; j < nOps; j++) out.share[j]! += out.measured[i * nOps + j]! / layer;
  });
  out.share = out.share.map((v) => (complete > 0 ? v / complete : 0));
  return out;
}

/**
 * Predicted seconds of every op-row of `p` into `into`: the formula of roofline.ts opSeconds,
 * inlined over typed arrays (test/calibrate.test.ts checks that the two agree).
 */
function predictInto(device: DeviceSpec, p: Prepared, into: Float64Array): void {
  const tile = device.gemmTokenTile ?? 1;
  const flops = device.peakFlops * device.computeEfficiency;
  const memory = device.memoryBandwidth * device.memoryEfficiency;
  const rowwise = device.memoryBandwidth * (device.elementwiseEfficiency ?? device.memoryEfficiency);
  const ov = device.kernelOverhead;
  for (let k = 0; k < into.length; k++) {
    const t = p.tokens[k]!;
    if (t <= 0) { into[k] = 0; continue; }
    const c = p.cls[k]!;
    const mem = p.bytes[k]! / (c === 2 ? rowwise : memory);
    let comp = 0;
    if (c === 0) comp = (p.flopsPerToken[k]! * (tile > 1 ? Math.ceil(t / tile) * tile : t)) / flops;
    into[k] = (comp > mem ? comp : mem) + p.kernels[k]! * ov;
  }
}

/** Predicted and measured seconds per row and op (DENSE_OPS order), for inspection and tests. */
export function predictRows(device: DeviceSpec, profile: VidurComputeProfile): { tokens: number; tp: number; predicted: number[]; measured: number[] }[] {
  const p = prepare(profile);
  const pred = new Float64Array(p.tokens.length);
  predictInto(device, p, pred);
  return profile.rows.map((r, i) => ({
    tokens: r.tokens, tp: r.tp,
    predicted: [...pred.subarray(i * p.nOps, (i + 1) * p.nOps)],
    measured: [...p.measured.subarray(i * p.nOps, (i + 1) * p.nOps)],
  }));
}

interface Sums {
  layerErr: number; layerN: number; smallErr: number; smallN: number;
  opErr: number[]; opN: number[]; tpErr: Map<number, { err: number; n: number }>;
}

function accumulate(device: DeviceSpec, p: Prepared, sums?: Sums): Sums {
  const s = sums ?? {
    layerErr: 0, layerN: 0, smallErr: 0, smallN: 0,
    opErr: new Array<number>(p.nOps).fill(0), opN: new Array<number>(p.nOps).fill(0), tpErr: new Map(),
  };
  const pred = new Float64Array(p.tokens.length);
  predictInto(device, p, pred);
  for (let i = 0; i < p.rowTokens.length; i++) {
    let total = 0;
    for (let j = 0; j < p.nOps; j++) {
      const k = i * p.nOps + j;
      total += pred[k]!;
      const m = p.measured[k]!;
      if (m > 0) {
        s.opErr[j]! += Math.abs(pred[k]! - m) / m;
        s.opN[j]!++;
      }
    }
    const layer = p.rowLayer[i]!;
    if (!(layer > 0)) continue;
    const e = Math.abs(total - layer) / layer;
    s.layerErr += e;
    s.layerN++;
    if (p.rowTokens[i]! <= SMALL_TOKENS) { s.smallErr += e; s.smallN++; }
    const tp = p.rowTp[i]!;
    const t = s.tpErr.get(tp) ?? { err: 0, n: 0 };
    t.err += e;
    t.n++;
    s.tpErr.set(tp, t);
  }
  return s;
}

const ratio = (err: number, n: number): number => (n > 0 ? err / n : NaN);

function summarise(s: Sums): ComputeEvaluation {
  return {
    layerMape: ratio(s.layerErr, s.layerN), layerPoints: s.layerN,
    smallLayerMape: ratio(s.smallErr, s.smallN), smallPoints: s.smallN,
    byTp: [...s.tpErr.entries()].sort((a, b) => a[0] - b[0]).map(([tp, t]) => ({ tp, mape: t.err / t.n, points: t.n })),
    ops: VIDUR_OPS.map((o, i) => ({ op: o.op, vidurOp: o.vidur, points: s.opN[i]!, mape: ratio(s.opErr[i]!, s.opN[i]!) }))
      .filter((o) => o.points > 0),
  };
}

/** Errors of the roofline on `device` against one measured profile. */
export function evaluateCompute(device: DeviceSpec, profile: VidurComputeProfile): ComputeEvaluation {
  return summarise(accumulate(device, prepare(profile)));
}

/** Dense-layer MAPE pooled over profiles, each against its device (every row counts once); undefined without any. */
export function pooledLayer(pairs: readonly { device: DeviceSpec; profile: VidurComputeProfile }[]): { mape: number; points: number } | undefined {
  let sums: Sums | undefined;
  for (const { device, profile } of pairs) sums = accumulate(device, prepare(profile), sums);
  return sums === undefined ? undefined : { mape: ratio(sums.layerErr, sums.layerN), points: sums.layerN };
}

/** Dense-layer MAPE of `device` pooled over several profiles (every row counts once). */
export function pooledLayerMape(device: DeviceSpec, profiles: readonly VidurComputeProfile[]): number {
  return pooledLayer(profiles.map((profile) => ({ device, profile })))?.mape ?? NaN;
}

/**
 * What the fit minimises, averaged over profiles: dense-layer MAPE + sum over ops of
 * (op's mean share of the layer time) x (op MAPE). The first term is the target; the second
 * makes each parameter answer to the ops it governs, weighted by how much time they take.
 */
function objective(device: DeviceSpec, prepared: readonly Prepared[]): number {
  let total = 0;
  for (const p of prepared) {
    const s = accumulate(device, p);
    let ops = 0;
    p.share.forEach((w, i) => { if (s.opN[i]! > 0) ops += w * (s.opErr[i]! / s.opN[i]!); });
    total += ratio(s.layerErr, s.layerN) + ops;
  }
  return total / prepared.length;
}

const logit = (e: number): number => Math.log(e / (1 - e));
const logistic = (x: number): number => 1 / (1 + Math.exp(-x));
const clampFraction = (e: number): number => Math.min(0.99, Math.max(0.01, e));

function withParams(base: DeviceSpec, p: DeviceParams): DeviceSpec {
  return { ...base, ...p };
}

export interface DeviceFit {
  device: DeviceSpec;
  objective: number;
}

/** Extra starting points of the fit (the device's current values are the first). */
const FIT_STARTS: readonly Omit<DeviceParams, 'gemmTokenTile'>[] = [
  { computeEfficiency: 0.5, memoryEfficiency: 0.5, elementwiseEfficiency: 0.3, kernelOverhead: 2e-6 },
  { computeEfficiency: 0.8, memoryEfficiency: 0.7, elementwiseEfficiency: 0.6, kernelOverhead: 5e-6 },
];

/**
 * Fits computeEfficiency, memoryEfficiency, elementwiseEfficiency (each in (0, 1), as logits)
 * and kernelOverhead (as a log) by Nelder-Mead from several starting points (the objective has a
 * shallow local minimum where memoryEfficiency saturates at 1), for each GEMM tile in `tiles`,
 * and keeps the best. Peaks (FLOP/s, bandwidth) stay the datasheet's: only fractions are fitted.
 */
export function fitDevice(start: DeviceSpec, profiles: readonly VidurComputeProfile[], tiles: readonly number[] = TILE_CANDIDATES): DeviceFit {
  const prepared = profiles.map(prepare);
  const encode = (s: Omit<DeviceParams, 'gemmTokenTile'>): number[] => [
    logit(clampFraction(s.computeEfficiency)), logit(clampFraction(s.memoryEfficiency)),
    logit(clampFraction(s.elementwiseEfficiency)), Math.log(Math.max(s.kernelOverhead, 1e-7)),
  ];
  const decode = (x: readonly number[], tile: number): DeviceParams => ({
    computeEfficiency: logistic(x[0]!), memoryEfficiency: logistic(x[1]!), elementwiseEfficiency: logistic(x[2]!),
    kernelOverhead: Math.exp(x[3]!), gemmTokenTile: tile,
  });
  let best: DeviceFit | undefined;
  for (const tile of tiles) {
    for (const s of [deviceParams(start), ...FIT_STARTS]) {
      const r = nelderMead((x) => objective(withParams(start, decode(x, tile)), prepared), encode(s), { maxEvaluations: 1500, restarts: 1 });
      if (best === undefined || r.value < best.objective) best = { device: withParams(start, decode(r.x, tile)), objective: r.value };
    }
  }
  return best!;
}

// ---- links ----

export interface LinkEvaluation {
  collectives: { collective: VidurCollective; points: number; mape: number }[];
  /** Mean of the collectives' MAPEs. */
  mape: number;
}

/** Predicted seconds of one measured collective over `link` (the roofline's formulas). */
export function linkSeconds(link: LinkSpec, row: VidurNetworkRow): number {
  if (row.collective === 'send_recv') return link.latency + row.bytes / link.bandwidth;
  const parts = ringAllReduceParts(link, row.bytes, row.ranks);
  return parts['latency']! + parts['transfer']!;
}

export function evaluateLink(link: LinkSpec, rows: readonly VidurNetworkRow[]): LinkEvaluation {
  const collectives: LinkEvaluation['collectives'] = [];
  for (const c of ['all_reduce', 'send_recv'] as const) {
    const mine = rows.filter((r) => r.collective === c && r.seconds > 0);
    if (mine.length === 0) continue;
    const err = mine.reduce((a, r) => a + Math.abs(linkSeconds(link, r) - r.seconds) / r.seconds, 0);
    collectives.push({ collective: c, points: mine.length, mape: err / mine.length });
  }
  const mape = collectives.reduce((a, c) => a + c.mape, 0) / (collectives.length || NaN);
  return { collectives, mape };
}

/**
 * Fits latency (log), bandwidth (as a fraction of `maxBandwidth`, the datasheet figure, when
 * given; else a log) and, when all-reduce rows exist, allReduceEfficiency (logit), minimising
 * the mean of the collectives' MAPEs.
 */
export function fitLink(start: LinkSpec, rows: readonly VidurNetworkRow[], maxBandwidth?: number): LinkSpec {
  const hasAllReduce = rows.some((r) => r.collective === 'all_reduce');
  const hasSendRecv = rows.some((r) => r.collective === 'send_recv');
  const fitEff = hasAllReduce && hasSendRecv;
  const bwToX = (bw: number): number => (maxBandwidth === undefined ? Math.log(bw) : logit(clampFraction(bw / maxBandwidth)));
  const xToBw = (x: number): number => (maxBandwidth === undefined ? Math.exp(x) : maxBandwidth * logistic(x));
  const decode = (x: readonly number[]): LinkSpec => ({
    ...start, latency: Math.exp(x[0]!), bandwidth: xToBw(x[1]!),
    ...(fitEff ? { allReduceEfficiency: logistic(x[2]!) } : {}),
  });
  const x0 = [Math.log(Math.max(start.latency, 1e-7)), bwToX(start.bandwidth)];
  if (fitEff) x0.push(logit(clampFraction(start.allReduceEfficiency ?? 0.8)));
  const r = nelderMead((x) => evaluateLink(decode(x), rows).mape, x0, { maxEvaluations: 2000, restarts: 2 });
  return decode(r.x);
}
