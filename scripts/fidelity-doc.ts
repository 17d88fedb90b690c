// The fidelity study's document (scripts/fidelity.ts): the tables, the target line and the
// charts of docs/fidelity.md, written between its generated markers from the compared runs and
// what the study recorded about itself (StudyMeta, also saved beside the runs so a replay of
// saved runs writes the same page).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProfileFile } from '../src/cost/profile-types.js';
import type { StepRecord } from '../src/engine/types.js';
import { fmt, markdownTable } from '../src/sim/evaluation.js';
import { relativeError, stepKind, STEP_KINDS, targetCheck, type Comparison, type RepeatedComparison } from '../src/sim/local-fidelity.js';
import type { LineChart, Series } from '../src/sim/plot.js';
import { loadPngRenderer } from '../src/sim/png.js';
import { cdf, writeChart } from '../src/sim/report.js';
import { median } from '../src/util/fit.js';

/** A cluster layout of the study, as `hetis serve` flags. */
export interface StudyLayout {
  name: string;
  /** The flags as the page shows them. */
  flags: string;
  primaryKv: string;
  attention: string;
}

/** One profile pass of the study: where it ran among the layouts, and its measured compute rate. */
export interface ProfilePass {
  /** 'before default', 'after no-slowdown', ... */
  at: string;
  flops: number;
}

/** What the study was and how it ran (saved as meta.json beside its runs). */
export interface StudyMeta {
  /** When the real runs were taken, ISO. */
  date: string;
  /** Seconds the study took (profiles and real runs). */
  wall: number;
  quick: boolean;
  repeats: number;
  runSeconds: number;
  minRequests: number;
  traceScale: number;
  /** The trace file, relative to the repository (absent: no trace workload). */
  traceFile?: string;
  layouts: StudyLayout[];
  machine: { cpu: string; cores: number; memoryGiB: number; node: string };
  /** The profile the replays used: its file, and the passes that made it (none: given with --profile). */
  profile: { path: string; seconds: number; passes: ProfilePass[] };
}

/** A study as the page shows it: what it was, and the profile its runs were replayed with. */
export interface StudyDoc {
  meta: StudyMeta;
  profile: ProfileFile;
}

/** Set when the page is written by replaying saved runs (`--replay DIR[,DIR...]`): from where, and when. */
export interface Replayed {
  from: string[];
  date: string;
}

export interface RunRow {
  layout: string;
  workload: 'trace' | 'poisson';
  rate: number;
  sent: number;
  failures: number;
  loadBefore: number;
  comparison: Comparison;
  steps: StepRecord[];
}

/** The repeats of one workload at one rate in one layout. */
export interface Group {
  layout: string;
  workload: 'trace' | 'poisson';
  rate: number;
  runs: RunRow[];
  combined: RepeatedComparison;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : '—');
const abs = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');

function figureTable(groups: readonly Group[], repeats: number): string {
  const names = groups[0]?.combined.figures.map((f) => f.name) ?? [];
  const header = ['workload', 'rate', 'busy', 'decode err', 'requests', ...names.map((n) => `${n} real${repeats > 1 ? ' (spread)' : ''} / sim (err)`)];
  const body = groups.map((g) => {
    const c = g.combined;
    const failed = g.runs.reduce((a, r) => a + r.failures, 0);
    return [
      g.workload, `${g.rate}${c.saturated ? ' (sat.)' : ''}`, `${(100 * c.busy).toFixed(0)}%`,
      pct(median(g.runs.map((r) => r.comparison.steps.find((k) => k.kind === 'decode')?.p50 ?? NaN))),
      `${c.requests}${repeats > 1 ? ` x ${c.repeats}` : ''}${failed > 0 ? ` (${failed} failed)` : ''}`,
      ...c.figures.map((f) => {
        const d = f.unit === 'tok/s' ? 0 : f.unit === 's' ? 3 : 2;
        return `${fmt(f.real, d)}${repeats > 1 ? ` (±${(100 * f.spread).toFixed(0)}%)` : ''} / ${fmt(f.sim, d)} (${pct(f.error)})`;
      }),
    ];
  });
  return markdownTable(header, body, ['left']);
}

function stepTable(rows: readonly RunRow[]): string {
  const header = ['kind', 'steps', 'measured P50 (ms)', 'predicted P50 (ms)', 'error P10', 'error P50', 'error P90', '|error| P50'];
  const all = rows.flatMap((r) => r.steps);
  const body: string[][] = [];
  for (const kind of [...STEP_KINDS, 'all'] as const) {
    const mine = kind === 'all' ? all : all.filter((s) => stepKind(s) === kind);
    if (mine.length === 0) continue;
    const errs = mine.map((s) => relativeError(s.predictedSeconds, s.seconds)).sort((a, b) => a - b);
    const q = (xs: readonly number[], p: number): number => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))]!;
    const ms = (f: (s: StepRecord) => number): string => fmt(1e3 * q(mine.map(f).sort((a, b) => a - b), 0.5), 2);
    body.push([kind, fmt(mine.length), ms((s) => s.seconds), ms((s) => s.predictedSeconds), pct(q(errs, 0.1)), pct(q(errs, 0.5)), pct(q(errs, 0.9)),
      abs(q(errs.map(Math.abs).sort((a, b) => a - b), 0.5))]);
  }
  return markdownTable(header, body, ['left']);
}

function charts(groups: readonly Group[], layout: string, chartDir: string): string[] {
  const png = loadPngRenderer();
  const mine = groups.filter((g) => g.layout === layout);
  const workloads = [...new Set(mine.map((g) => g.workload))];
  const figure = (name: string): Series[] => workloads.flatMap((w) => {
    const gs = mine.filter((g) => g.workload === w);
    const pick = (side: 'real' | 'sim') => gs.map((g) => [g.rate, g.combined.figures.find((f) => f.name === name)![side]] as [number, number]);
    return [{ name: `${w}, real`, points: pick('real') }, { name: `${w}, simulated`, points: pick('sim') }];
  });
  const out: string[] = [];
  const write = (name: string, chart: LineChart): void => {
    const files = writeChart(chartDir, `${layout}-${name}`, chart, png);
    out.push(files.find((f) => f.endsWith('.png')) ?? files[0]!);
  };
  write('throughput', { title: `Throughput, real and simulated (${layout})`, xLabel: 'offered rate (req/s)', yLabel: 'output tokens/s', series: figure('throughput'), markers: true });
  write('tpot', { title: `TPOT P50, real and simulated (${layout})`, xLabel: 'offered rate (req/s)', yLabel: 'ms', series: figure('TPOT P50'), markers: true });
  const steps = mine.flatMap((g) => g.runs.flatMap((r) => r.steps));
  const series: Series[] = STEP_KINDS.flatMap((kind) => {
    const errs = steps.filter((s) => stepKind(s) === kind).map((s) => 100 * relativeError(s.predictedSeconds, s.seconds));
    return errs.length === 0 ? [] : [{ name: `${kind} (${errs.length})`, points: cdf(errs) }];
  });
  write('step-error', { title: `Per-step error, predicted / measured - 1 (${layout})`, xLabel: 'error (%)', yLabel: 'share of steps', series, yZero: true });
  return out;
}

/** The profile line: its file, how it was measured, and its headline numbers. */
function profileLine(p: ProfileFile, m: StudyMeta['profile']): string {
  const link = p.links[0];
  const da = p.profiles[0]?.decodeAttention;
  const sv = p.profiles[0]?.serving;
  const us = (x: number): string => (x * 1e6).toFixed(0);
  const serving = sv?.step !== undefined
    ? `; serving per step ${us(sv.step)} us${sv.busy !== undefined ? ` at ${(sv.busy * 100).toFixed(0)}% busy` : ''}${sv.light !== undefined ? `, ${us(sv.light.step)} us at ${(sv.light.busy * 100).toFixed(0)}%` : ''}` : '';
  const passes = m.passes.length > 1
    ? `; ${m.passes.length} profiles spread over the runs, each number their median (GFLOP/s ${m.passes.map((q) => `${(q.flops / 1e9).toFixed(0)} ${q.at}`).join(', ')})`
    : m.passes.length === 1 ? `; one profile, ${m.passes[0]!.at}` : '';
  return `Profile: \`${m.path}\`${m.seconds > 0 ? ` (measured by the study in ${m.seconds.toFixed(0)} s${passes})` : ''}, ${p.machine.clock} clock: ` +
    `${(p.devices[0]!.peakFlops / 1e9).toFixed(0)} GFLOP/s, ${(p.devices[0]!.memoryBandwidth / 1e9).toFixed(1)} GB/s; ` +
    (da !== undefined ? `decode attention ${(da.fixed * 1e6).toFixed(1)} us + ${(da.perHead * 1e6).toFixed(2)} us/head + ${(da.perHeadToken * 1e9).toFixed(1)} ns/head-token; ` : '') +
    (link !== undefined ? `worker link ${(link.latency * 1e6).toFixed(0)} us + ${(link.bandwidth / 1e9).toFixed(2)} GB/s` : '') + `${serving}.`;
}

/**
 * Writes the generated part of `docPath` (between its markers; the rest of the page is kept) and
 * its charts beside it. Several studies: their runs pooled (each replayed with its own profile).
 */
export function writeDoc(docPath: string, groups: readonly Group[], studies: readonly StudyDoc[], replayed?: Replayed): void {
  const chartDir = join(dirname(docPath), 'fidelity');
  const { meta, profile } = studies[0]!;
  const repeats = Math.max(...groups.map((g) => g.runs.length));
  const parts: string[] = [];
  const command = `npm run fidelity${meta.quick ? ' -- --quick' : ''}`;
  const recorded = studies.map((x) => `${x.meta.date.slice(0, 10)} (in ${x.meta.wall.toFixed(0)} s)`).join(', ');
  parts.push(replayed === undefined
    ? `Generated by \`${command}\` on ${meta.date.slice(0, 10)} in ${meta.wall.toFixed(0)} s; do not edit between the markers (rerun it).`
    : `Generated by \`npm run fidelity -- --replay ${replayed.from.join(',')}\` on ${replayed.date.slice(0, 10)}: the real runs ${studies.length > 1 ? `of ${studies.length} studies (\`${command}\`, recorded on ${recorded}), pooled and` : `that \`${command}\` recorded on ${recorded},`} replayed again; do not edit between the markers (rerun it).`);
  parts.push('');
  parts.push(`Machine: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB.toFixed(0)} GiB, Node ${meta.machine.node}, ${profile.machine.kernels}. ` +
    `Load average (1 min) before each run: ${groups.flatMap((g) => g.runs.map((r) => r.loadBefore.toFixed(1))).join(', ')} (other tenants share these cores).`);
  parts.push('');
  if (studies.length === 1) parts.push(profileLine(profile, meta.profile));
  else {
    parts.push(`Each study's runs are replayed with its own profile:`);
    parts.push('');
    for (const x of studies) parts.push(`- ${profileLine(x.profile, x.meta.profile)}`);
  }
  parts.push('');
  parts.push(`Workloads: ${meta.traceFile !== undefined ? `the first requests of the Azure conversation trace (\`${meta.traceFile}\`), rescaled to each rate, prompt and output lengths x ${meta.traceScale} and fitted to the 256-token context; ` : ''}` +
    `Poisson arrivals with prompt and output lengths uniform in [16, 128]. Each run sends ${meta.runSeconds} s of arrivals (at least ${meta.minRequests} requests), greedy, non-streaming, prompts as token ids` +
    (repeats > 1 ? `; every workload and rate runs ${studies.length > 1 ? `${meta.repeats} times in each of ${studies.length} studies (${repeats} runs)` : `${repeats} times`}, each replayed on its own, and the tables compare the median of the real runs with the median of their replays; *(spread)*: how far the furthest single real run was from that median. ` : '. ') +
    '*busy*: share of the real run\'s time its engine spent in steps (median); *decode err*: the real run\'s decode steps against their predictions with the replays\' profile (signed median of predicted / measured - 1, median over the runs): how fast the machine ran against that profile (negative: slower); *(sat.)*: the real run completed requests more slowly than 90% of the rate they arrived at, or its engine was busy 85% of the time or more (the knee of the queue), in most of the runs.');
  parts.push('');
  for (const l of meta.layouts) {
    const mine = groups.filter((g) => g.layout === l.name);
    if (mine.length === 0) continue;
    const runs = mine.flatMap((g) => g.runs);
    parts.push(`### Layout \`${l.name}\`: \`hetis serve ${l.flags}\``);
    parts.push('');
    parts.push(`Simulate it: \`npx hetis simulate --cluster local --primary-kv ${l.primaryKv} --attention ${l.attention} --model models/hetis-kjv.gguf --workload FILE\`.`);
    parts.push('');
    parts.push(`Request level, real against simulated (error = simulated / real - 1; TTFT in s, TPOT and step times in ms${repeats > 1 ? '; medians over the runs' : ''}):`);
    parts.push('');
    parts.push(figureTable(mine, repeats));
    const t = targetCheck(mine.map((g) => g.combined), mine.map((g) => g.runs.flatMap((r) => r.steps)));
    const single = targetCheck(runs.map((r) => r.comparison), runs.map((r) => r.steps));
    parts.push(`Against the targets, workloads below saturation (${t.runs} of ${mine.length}): largest |error| of TPOT P50/P95 ${abs(t.tpot)} (target 10%), of throughput ${abs(t.throughput)} (10%), ` +
      `of TTFT P50/P95 ${abs(t.ttft)} (20%); per-step |error| at the median ${abs(t.stepMedianPooled)} over all their steps, ${abs(t.stepMedian)} in the worst workload (15%).` +
      (repeats > 1 ? ` Single real runs strayed from their median by up to ${abs(t.tpotSpread)} in TPOT and ${abs(t.ttftSpread)} in TTFT; compared run by run (each run against its own replay) the largest |error| below saturation is ${abs(single.tpot)} in TPOT, ${abs(single.throughput)} in throughput and ${abs(single.ttft)} in TTFT.` : ''));
    parts.push('');
    parts.push('Per step, every real step of these runs against its prediction with the replays\' profile (error = predicted / measured - 1; *migration*: any step that moved heads first):');
    parts.push('');
    parts.push(stepTable(runs));
    parts.push('');
    const files = charts(groups, l.name, chartDir);
    for (const f of files) parts.push(`![${f}](fidelity/${f})`);
    parts.push('');
  }
  const generated = parts.join('\n');
  const begin = '<!-- fidelity:begin -->', end = '<!-- fidelity:end -->';
  const old = existsSync(docPath) ? readFileSync(docPath, 'utf8') : `# Fidelity: the simulator against real serving\n\n${begin}\n${end}\n`;
  const i = old.indexOf(begin), j = old.indexOf(end);
  const doc = i >= 0 && j > i ? `${old.slice(0, i + begin.length)}\n${generated}\n${old.slice(j)}` : `${old.trimEnd()}\n\n${begin}\n${generated}\n${end}\n`;
  mkdirSync(dirname(docPath), { recursive: true });
  writeFileSync(docPath, doc);
}
