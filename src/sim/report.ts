// Owns: the files `hetis simulate --out` writes besides its JSON and per-request CSVs: results.csv
// and the charts (SVG, and PNG when resvg loads): throughput against rate, TTFT and TPOT CDFs, KV
// use and compute utilisation per device over time. Must not: run simulations (it reads their
// digests) or print.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestRecord, StepRecord } from '../engine/types.js';
import { tpotOf, type RunMetrics } from './metrics.js';
import { renderLineChart, type LineChart, type Series } from './plot.js';
import { loadPngRenderer, type SvgToPng } from './png.js';

/** Points kept per plotted series (CDFs and KV use); enough for a 720 px wide chart. */
export const MAX_POINTS = 500;
/** A run is saturated when it completes fewer than this share of its offered rate (see saturated()). */
export const SATURATION_SHARE = 0.9;

/** What the report keeps of one (system, rate) run: small, whatever the run's length. Plain data. */
export interface RunDigest {
  system: string;
  /** Offered rate, requests/s; undefined when the trace kept its own. */
  rate: number | undefined;
  /** The run's JSON line (`--json`), written as a row of results.csv. */
  row: Readonly<Record<string, unknown>>;
  throughputTokS: number;
  /** Completed requests over the makespan. */
  throughputReqS: number;
  /** Empirical CDFs, (value, fraction of requests at or below it), at most MAX_POINTS each. */
  ttftCdf: [number, number][];
  tpotCdf: [number, number][];
  /** KV blocks used per device against simulated time, seconds; at most MAX_POINTS per device. */
  kv: Series[];
  /** Compute utilisation (busy share, 0..1) per device per time window; empty when steps carry no busy times. */
  util: Series[];
}

export function digestRun(
  system: string, rate: number | undefined, row: Readonly<Record<string, unknown>>,
  m: RunMetrics, records: readonly RequestRecord[], steps: readonly StepRecord[],
): RunDigest {
  const served = records.filter((r) => r.finishReason !== 'error');
  const ttfts = served.flatMap((r) => (r.firstTokenAt !== undefined ? [r.firstTokenAt - r.arrival] : []));
  const tpots = served.flatMap((r) => { const t = tpotOf(r); return t === undefined ? [] : [t]; });
  return { system, rate, row, throughputTokS: m.throughputTokS, throughputReqS: m.throughputReqS, ttftCdf: cdf(ttfts), tpotCdf: cdf(tpots), kv: kvSeries(steps), util: utilisationSeries(steps) };
}

/** The empirical CDF of `values` at up to `max` evenly spaced ranks (always the first and the last). */
export function cdf(values: readonly number[], max = MAX_POINTS): [number, number][] {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return [];
  const k = Math.min(n, max);
  const out: [number, number][] = [];
  for (let j = 0; j < k; j++) {
    const r = k === 1 ? n - 1 : Math.round((j * (n - 1)) / (k - 1));
    out.push([s[r]!, (r + 1) / n]);
  }
  return out;
}

/**
 * KV blocks used per device over time, from step records (a point at each step's end). Steps of
 * several engines (replicas) are told apart by their device set, which holds the engine's own
 * `replicaN/primaries`; a device shared by several engines (an attention worker) shows their sum.
 */
export function kvSeries(steps: readonly StepRecord[], max = MAX_POINTS): Series[] {
  const engines = new Map<string, StepRecord[]>();
  for (const s of steps) {
    const key = Object.keys(s.kvUsedBlocks).join('\n');
    const list = engines.get(key);
    if (list === undefined) engines.set(key, [s]);
    else list.push(s);
  }
  // Legend order: each replica's primaries, then the other devices, each as first seen.
  const seen = [...new Set([...engines.keys()].flatMap((k) => k.split('\n')))];
  const devices = [...seen.filter((d) => d.endsWith('/primaries')), ...seen.filter((d) => !d.endsWith('/primaries'))];
  return devices.map((id) => {
    // Merge the engines' time-ordered steps that touch `id`, keeping each one's latest value.
    const lists = [...engines.values()].filter((l) => id in l[0]!.kvUsedBlocks);
    const at = lists.map(() => 0);
    const current = lists.map(() => 0);
    const points: [number, number][] = [];
    for (;;) {
      let e = -1;
      for (let i = 0; i < lists.length; i++) {
        const s = lists[i]![at[i]!];
        if (s !== undefined && (e < 0 || s.start + s.seconds < end(lists[e]![at[e]!]!))) e = i;
      }
      if (e < 0) break;
      const s = lists[e]![at[e]!++]!;
      current[e] = s.kvUsedBlocks[id] ?? 0;
      points.push([end(s), current.reduce((a, b) => a + b, 0)]);
    }
    return { name: id, points: downsample(points, max) };
  });
}

/**
 * Compute utilisation per device over time: the busy seconds of the steps that start in each of
 * `windows` equal time windows (summed over engines: a shared attention worker adds up), over the
 * window's length. Devices in first-seen order, each replica's primaries first.
 */
export function utilisationSeries(steps: readonly StepRecord[], windows = 100): Series[] {
  const timed = steps.filter((s) => s.busy !== undefined);
  if (timed.length === 0) return [];
  const t0 = Math.min(...timed.map((s) => s.start));
  const t1 = Math.max(...timed.map(end));
  const width = (t1 - t0) / windows || 1;
  const seen = [...new Set(timed.flatMap((s) => Object.keys(s.busy!)))];
  const devices = [...seen.filter((d) => d.endsWith('/primaries')), ...seen.filter((d) => !d.endsWith('/primaries'))];
  const busy = new Map(devices.map((d) => [d, new Array<number>(windows).fill(0)]));
  for (const s of timed) {
    const w = Math.min(windows - 1, Math.floor((s.start - t0) / width));
    for (const [d, b] of Object.entries(s.busy!)) busy.get(d)![w]! += b;
  }
  return devices.map((d) => ({ name: d, points: busy.get(d)!.map((b, w): [number, number] => [t0 + (w + 0.5) * width, Math.min(1, b / width)]) }));
}

function end(s: StepRecord): number {
  return s.start + s.seconds;
}

/** At most `max` points of a time-ordered series: the lowest and the highest of each of max/2 time buckets, in time order. */
export function downsample(points: readonly [number, number][], max = MAX_POINTS): [number, number][] {
  if (points.length <= max) return [...points];
  const buckets = Math.floor(max / 2);
  const t0 = points[0]![0];
  const span = points[points.length - 1]![0] - t0 || 1;
  const out: [number, number][] = [];
  let i = 0;
  for (let b = 0; b < buckets; b++) {
    let lo = -1;
    let hi = -1;
    for (; i < points.length && (b === buckets - 1 || Math.floor(((points[i]![0] - t0) / span) * buckets) <= b); i++) {
      if (lo < 0 || points[i]![1] < points[lo]![1]) lo = i;
      if (hi < 0 || points[i]![1] > points[hi]![1]) hi = i;
    }
    if (lo < 0) continue;
    for (const j of lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)]) out.push(points[j]!);
  }
  return out;
}

/**
 * Saturated: the run completed requests more slowly than SATURATION_SHARE of the offered rate
 * (completed / makespan). The makespan includes draining the last requests, so a short run
 * (few requests per second of decode) reads as saturated sooner than a long one.
 */
export function saturated(d: RunDigest): boolean {
  return d.rate !== undefined && d.throughputReqS < SATURATION_SHARE * d.rate;
}

/** Per system, the run its latency CDFs show: the highest unsaturated rate, else the lowest rate. */
export function cdfRuns(runs: readonly RunDigest[]): RunDigest[] {
  return systemsOf(runs).map((system) => {
    const mine = runs.filter((r) => r.system === system).sort((a, b) => (a.rate ?? 0) - (b.rate ?? 0));
    return mine.filter((r) => !saturated(r)).pop() ?? mine[0]!;
  });
}

function systemsOf(runs: readonly RunDigest[]): string[] {
  return [...new Set(runs.map((r) => r.system))];
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per run, the columns of its JSON line. */
export function resultsCsv(runs: readonly RunDigest[]): string {
  const cols = [...new Set(runs.flatMap((r) => Object.keys(r.row)))];
  return [cols.join(','), ...runs.map((r) => cols.map((c) => csvCell(r.row[c])).join(','))].join('\n') + '\n';
}

/** Whether the CDF's values span enough to read better on a log axis. */
function spread(series: readonly Series[]): boolean {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]).filter((x) => x > 0));
  return xs.length > 0 && Math.max(...xs) / Math.min(...xs) > 100;
}

function rateLabel(rate: number | undefined): string {
  return rate === undefined ? 'trace rate' : `${rate} req/s`;
}

/** The charts for `runs` (in run order), by file name without extension. */
export function charts(runs: readonly RunDigest[], subtitle = ''): Map<string, LineChart> {
  const out = new Map<string, LineChart>();
  const tail = subtitle === '' ? '' : ` (${subtitle})`;
  const rates = [...new Set(runs.flatMap((r) => (r.rate === undefined ? [] : [r.rate])))];
  if (rates.length > 1) {
    out.set('throughput-vs-rate', {
      title: `Throughput against rate${tail}`, xLabel: 'offered rate (requests/s)', yLabel: 'throughput (output tokens/s)', markers: true,
      series: systemsOf(runs).map((system) => ({
        name: system,
        points: runs.filter((r) => r.system === system && r.rate !== undefined).map((r): [number, number] => [r.rate!, r.throughputTokS]).sort((a, b) => a[0] - b[0]),
      })),
    });
  }
  const picked = cdfRuns(runs);
  for (const [file, what, unit, scale, get] of [
    ['ttft-cdf', 'TTFT', 's', 1, (d: RunDigest) => d.ttftCdf],
    ['tpot-cdf', 'TPOT', 'ms', 1e3, (d: RunDigest) => d.tpotCdf],
  ] as const) {
    const series = picked.map((d) => ({ name: `${d.system} @ ${rateLabel(d.rate)}`, points: get(d).map(([x, y]): [number, number] => [x * scale, y]) }));
    const which = rates.length > 1 ? ', highest unsaturated rate per system' : '';
    out.set(file, { title: `${what} CDF${which}${tail}`, xLabel: `${what} (${unit})`, yLabel: 'fraction of requests', series, logX: spread(series) });
  }
  const top = rates.length > 0 ? Math.max(...rates) : undefined;
  for (const d of runs.filter((r) => r.rate === top)) {
    out.set(`kv-use-${d.system.replace(/[^A-Za-z0-9._-]/g, '_')}`, {
      title: `KV use per device, ${d.system} @ ${rateLabel(d.rate)}${tail}`, xLabel: 'simulated time (s)', yLabel: 'KV blocks used', series: d.kv,
    });
    if (d.util.length > 0) {
      out.set(`utilisation-${d.system.replace(/[^A-Za-z0-9._-]/g, '_')}`, {
        title: `Compute utilisation per device, ${d.system} @ ${rateLabel(d.rate)}${tail}`, xLabel: 'simulated time (s)', yLabel: 'busy share', series: d.util,
      });
    }
  }
  return out;
}

/**
 * Writes results.csv and every chart as SVG (and PNG unless `png` is an error) into `dir`.
 * Returns the files written and, when PNGs could not be made, the one-line reason.
 */
export function writeReport(dir: string, runs: readonly RunDigest[], subtitle = '', png: PngRenderer = loadPngRenderer()): { files: string[]; warning?: string } {
  mkdirSync(dir, { recursive: true });
  const files = ['results.csv'];
  writeFileSync(join(dir, 'results.csv'), resultsCsv(runs));
  for (const [name, chart] of charts(runs, subtitle)) files.push(...writeChart(dir, name, chart, png));
  return 'error' in png ? { files, warning: png.error } : { files };
}

export type PngRenderer = { render: SvgToPng } | { error: string };

/** Writes `<name>.svg` and, when the renderer loaded, `<name>.png` into `dir`; returns the file names. */
export function writeChart(dir: string, name: string, chart: LineChart, png: PngRenderer): string[] {
  mkdirSync(dir, { recursive: true });
  const svg = renderLineChart(chart);
  writeFileSync(join(dir, `${name}.svg`), svg);
  if (!('render' in png)) return [`${name}.svg`];
  writeFileSync(join(dir, `${name}.png`), png.render(svg));
  return [`${name}.svg`, `${name}.png`];
}
