// The simulator against real serving on the cluster we can run: the local CPU cluster as `hetis
// serve` starts it. Profiles this machine (what `hetis profile` writes, into the cache `hetis
// serve` and `hetis simulate --cluster local` read), then for each cluster layout and workload
// (the Azure conversation trace scaled to the built-in model's 256-token context, and a
// synthetic Poisson one) at rates from light to saturating: runs the workload for real against
// the server, replays exactly its requests (arrivals, lengths, max_tokens, generated lengths) on
// the simulator's virtual clock with the engine configuration the server used, and compares.
// Every workload and rate runs --repeats times (the machine is shared, and one run's TPOT moves
// by 10-30% from the next's); the tables compare the medians of the real runs with the medians
// of their replays, and say how far single real runs strayed. Before each run it also times
// one-token dense work in a fresh process (the machine's drift since profiling). Writes
// docs/fidelity.md (between its generated markers) and its charts (docs/fidelity/).
//
//   npm run fidelity [-- --quick] [--profile FILE] [--profile-repeats N] [--layouts default,no-slowdown] [--seconds S] [--repeats N] [--out FILE]
//
// One JSON line per run and one per workload and rate (its medians) on stdout, progress on
// stderr. --quick: one layout, two rates, short runs, one repeat, written to
// bench/out/fidelity/ unless --out.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProfileFile } from '../src/cost/profile-types.js';
import type { StepRecord } from '../src/engine/types.js';
import { openModel } from '../src/cli/open-model.js';
import { parseAttentionList } from '../src/cli/serve.js';
import { profileCachePath } from '../src/cli/profile.js';
import { profileRepeated } from '../src/server/profile-serving.js';
import type { ClusterLayout } from '../src/runtime/cluster-layout.js';
import { SERVING_TUNING } from '../src/runtime/local-devices.js';
import { fmt, markdownTable } from '../src/sim/evaluation.js';
import {
  combineRepeats, compareReplay, poissonWorkload, relativeError, scaledTrace, stepKind, STEP_KINDS, targetCheck, type Comparison, type LoadRequest, type RepeatedComparison,
} from '../src/sim/local-fidelity.js';
import type { LineChart, Series } from '../src/sim/plot.js';
import { loadPngRenderer } from '../src/sim/png.js';
import { cdf, writeChart } from '../src/sim/report.js';
import { findPresetTrace, loadWorkload } from '../src/sim/workload.js';
import { median } from '../src/util/fit.js';
import { parseBytes } from '../src/util/units.js';
import { runLoad, runScript, startLocalServer } from './fidelity-run.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'string' },
    layouts: { type: 'string' },
    seconds: { type: 'string' },
    repeats: { type: 'string' },
    'profile-repeats': { type: 'string' },
    out: { type: 'string' },
  },
});

const root = resolve(import.meta.dirname ?? '.', '..');
const quick = args.quick === true;
const docPath = resolve(args.out ?? (quick ? join(root, 'bench/out/fidelity/fidelity.md') : join(root, 'docs/fidelity.md')));
const chartDir = join(dirname(docPath), 'fidelity');
const modelPath = join(root, 'models/hetis-kjv.gguf');
/** The built-in model, loaded once (the profile runs its shape). */
const model = openModel(modelPath, undefined).model;
const cachePath = profileCachePath({ name: 'hetis-kjv' }, root);
const log = (m: string): void => { process.stderr.write(`[fidelity] ${m}\n`); };
const SLO = { ttft: 5, tpot: 0.1 };
/** Seconds of arrivals per run (at least MIN_REQUESTS requests). */
const RUN_SECONDS = Number(args.seconds ?? (quick ? 4 : 10));
const MIN_REQUESTS = quick ? 20 : 40;
/** Runs of each workload and rate. */
const REPEATS = Number(args.repeats ?? (quick ? 1 : 3));
if (!Number.isInteger(REPEATS) || REPEATS < 1) throw new Error(`--repeats must be a positive integer, got ${args.repeats}`);
/** Profiles taken in a row and merged (each number their median): one is a snapshot of ~90 s of a machine whose speed moves. */
const PROFILE_REPEATS = Number(args['profile-repeats'] ?? (quick ? 1 : 3));
if (!Number.isInteger(PROFILE_REPEATS) || PROFILE_REPEATS < 1) throw new Error(`--profile-repeats must be a positive integer, got ${args['profile-repeats']}`);
if (!(RUN_SECONDS > 0)) throw new Error(`--seconds must be a positive number, got ${args.seconds}`);
/** The warm-up before a layout's runs (not measured). */
const WARMUP = quick ? { rate: 10, count: 50 } : { rate: 10, count: 250 };
/** Trace lengths are scaled by this to suit a 256-token context (Azure conversation: prompt median ~1,000, output ~240). */
const TRACE_SCALE = 0.1;

/** Cluster layouts as `hetis serve` flags: the default, and the same without the emulated slow worker. */
const LAYOUTS: Record<string, { flags: string; primaryKv: string; attention: string }> = {
  default: { flags: '(defaults: --primary-kv 32MiB --attention 64MiB,32MiB:2)', primaryKv: '32MiB', attention: '64MiB,32MiB:2' },
  'no-slowdown': { flags: '--attention 64MiB,32MiB', primaryKv: '32MiB', attention: '64MiB,32MiB' },
};

/** Offered rates, requests/s: light, medium, saturating (the trace's outputs are short, so it takes more requests). */
const RATES = { poisson: quick ? [4, 25] : [3, 8, 25], trace: quick ? [6, 40] : [5, 15, 40] };

interface RunRow {
  layout: string;
  workload: 'trace' | 'poisson';
  rate: number;
  sent: number;
  failures: number;
  loadBefore: number;
  /** How much slower one-token dense work ran right before the run than right after profiling (> 0: slower now). */
  drift: number;
  comparison: Comparison;
  steps: StepRecord[];
}

/** The repeats of one workload at one rate in one layout. */
interface Group {
  layout: string;
  workload: 'trace' | 'poisson';
  rate: number;
  runs: RunRow[];
  combined: RepeatedComparison;
}

function layoutOf(name: string): ClusterLayout {
  const l = LAYOUTS[name];
  if (l === undefined) throw new Error(`unknown layout '${name}' (known: ${Object.keys(LAYOUTS).join(', ')})`);
  return { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: parseBytes(l.primaryKv, 'primary KV') }, attention: parseAttentionList(l.attention), blockSize: SERVING_TUNING.blockSize };
}

function traceDirs(): string[] {
  return [process.env['HETIS_TRACE_DIR'], join(root, 'data/traces'), join(root, '../shared/data/traces')].filter((d): d is string => d !== undefined);
}

function workloadAt(kind: 'trace' | 'poisson', rate: number, context: number): LoadRequest[] {
  const count = Math.max(MIN_REQUESTS, Math.round(rate * RUN_SECONDS));
  if (kind === 'poisson') return poissonWorkload({ seed: 1, rate, count, prompt: [16, 128], output: [16, 128], context });
  const w = loadWorkload('azure-conv', { seed: 1, rate, count, traceDirs: traceDirs() });
  return scaledTrace(w, TRACE_SCALE, context);
}

async function measureProfile(): Promise<{ profile: ProfileFile; path: string; seconds: number; passes: number[] }> {
  if (args.profile !== undefined) return { profile: JSON.parse(readFileSync(args.profile, 'utf8')) as ProfileFile, path: args.profile, seconds: 0, passes: [] };
  log(`profiling this machine for the built-in model (full grid; what \`hetis profile --model models/hetis-kjv.gguf${PROFILE_REPEATS > 1 ? ` --repeats ${PROFILE_REPEATS}` : ''}\` measures)`);
  const t0 = performance.now();
  let last = 0;
  const { profile, passes } = await profileRepeated({
    model, quick, modelPath, passes: PROFILE_REPEATS,
    onProgress: (d, t, l) => { if (d === t || performance.now() - last > 5000) { last = performance.now(); log(`profile ${l} (${d}/${t})`); } },
  });
  mkdirSync(dirname(cachePath), { recursive: true });
  writeFileSync(cachePath, `${JSON.stringify(profile, null, 2)}\n`);
  return { profile, path: cachePath, seconds: (performance.now() - t0) / 1000, passes: passes.map((p) => p.devices[0]!.peakFlops) };
}

/** Median one-token dense sweep, seconds, timed in a fresh process (scripts/fidelity-speed.ts). */
async function speedProbe(): Promise<number> {
  const { seconds } = await runScript<{ seconds: number }>('fidelity-speed.ts', 'the speed probe', '', 60);
  if (!Number.isFinite(seconds)) throw new Error(`the speed probe wrote ${String(seconds)}`);
  return seconds;
}

async function main(): Promise<void> {
  const started = performance.now();
  const traceFile = findPresetTrace('azure-conv', traceDirs());
  const workloads: ('trace' | 'poisson')[] = traceFile !== undefined ? ['trace', 'poisson'] : ['poisson'];
  if (traceFile === undefined) log('the Azure conversation trace (splitwise_conv.csv) is not in ../shared/data/traces or $HETIS_TRACE_DIR: the trace workload is skipped');
  const layouts = (args.layouts ?? (quick ? 'default' : 'default,no-slowdown')).split(',');
  const { profile, path: profilePath, seconds: profileSeconds, passes } = await measureProfile();
  const reference = await speedProbe();
  const groups: Group[] = [];
  const line = (o: Record<string, unknown>, c: Pick<Comparison, 'figures' | 'steps' | 'saturated'>): void => {
    process.stdout.write(`${JSON.stringify({
      ...o, saturated: c.saturated,
      ...Object.fromEntries(c.figures.map((f) => [f.name.replace(/ /g, '_').toLowerCase(), { real: +f.real.toPrecision(4), sim: +f.sim.toPrecision(4), error: +f.error.toFixed(3), ...('spread' in f ? { spread: +(f.spread as number).toFixed(3) } : {}) }])),
      step_error_p50: Object.fromEntries(c.steps.map((s) => [s.kind, +s.p50.toFixed(3)])),
    })}\n`);
  };
  for (const name of layouts) {
    const layout = layoutOf(name);
    log(`layout ${name}: starting the local cluster (${1 + layout.attention.length} worker processes)`);
    const server = await startLocalServer({ modelPath, layout, profile });
    try {
      // Warm-up: the worker processes' JIT takes tens of seconds of varied work to settle (after
      // 20 requests, the first run's decode steps were still 10-20% slower than later runs').
      log(`${name}: warming up (${WARMUP.count} requests at ${WARMUP.rate} req/s)`);
      await runLoad(server, poissonWorkload({ seed: 99, ...WARMUP, prompt: [16, 128], output: [8, 64], context: server.contextLength }), 99);
      for (const workload of workloads) {
        for (const rate of RATES[workload]) {
          const requests = workloadAt(workload, rate, server.contextLength);
          const runs: RunRow[] = [];
          for (let repeat = 1; repeat <= REPEATS; repeat++) {
            const loadBefore = loadavg()[0]!;
            const drift = (await speedProbe()) / reference - 1;
            log(`${name} ${workload} @ ${rate} req/s: ${requests.length} requests${REPEATS > 1 ? `, run ${repeat} of ${REPEATS}` : ''}`);
            const run = await runLoad(server, requests, rate);
            const { replay: _replay, ...comparison } = await compareReplay(server.config, run, SLO);
            runs.push({ layout: name, workload, rate, sent: requests.length, failures: run.failures.length, loadBefore, drift, comparison, steps: run.steps });
            line({ kind: 'run', layout: name, workload, rate, repeat, requests: comparison.requests, failures: run.failures.length, mismatched: comparison.mismatched.length, drift: +drift.toFixed(3) }, comparison);
            if (run.failures.length > 0) log(`  ${run.failures.length} requests failed, e.g. ${run.failures[0]}`);
          }
          const combined = combineRepeats(runs.map((r) => r.comparison), runs.map((r) => r.steps));
          groups.push({ layout: name, workload, rate, runs, combined });
          line({ kind: 'median', layout: name, workload, rate, repeats: REPEATS, requests: combined.requests, mismatched: combined.mismatched.length }, combined);
        }
      }
    } finally {
      await server.close();
    }
  }
  const wall = (performance.now() - started) / 1000;
  writeDoc(groups, { profile, profilePath, profileSeconds, passes, wall, layouts, traceFile });
  log(`wrote ${relative(root, docPath)} (${wall.toFixed(0)} s)`);
}

// ---- the document -------------------------------------------------------------------------

const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : '—');
const abs = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');

function figureTable(groups: readonly Group[]): string {
  const names = groups[0]?.combined.figures.map((f) => f.name) ?? [];
  const header = ['workload', 'rate', 'busy', 'machine', 'decode err', 'requests', ...names.map((n) => `${n} real${REPEATS > 1 ? ' (spread)' : ''} / sim (err)`)];
  const body = groups.map((g) => {
    const c = g.combined;
    const failed = g.runs.reduce((a, r) => a + r.failures, 0);
    return [
      g.workload, `${g.rate}${c.saturated ? ' (sat.)' : ''}`, `${(100 * c.busy).toFixed(0)}%`, pct(median(g.runs.map((r) => r.drift))),
      pct(median(g.runs.map((r) => r.comparison.steps.find((k) => k.kind === 'decode')?.p50 ?? NaN))),
      `${c.requests}${REPEATS > 1 ? ` x ${c.repeats}` : ''}${failed > 0 ? ` (${failed} failed)` : ''}`,
      ...c.figures.map((f) => {
        const d = f.unit === 'tok/s' ? 0 : f.unit === 's' ? 3 : 2;
        return `${fmt(f.real, d)}${REPEATS > 1 ? ` (±${(100 * f.spread).toFixed(0)}%)` : ''} / ${fmt(f.sim, d)} (${pct(f.error)})`;
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

function charts(groups: readonly Group[], layout: string): string[] {
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

function writeDoc(groups: readonly Group[], o: { profile: ProfileFile; profilePath: string; profileSeconds: number; passes: number[]; wall: number; layouts: string[]; traceFile: string | undefined }): void {
  const p = o.profile;
  const link = p.links[0];
  const da = p.profiles[0]?.decodeAttention;
  const sv = p.profiles[0]?.serving;
  const us = (x: number): string => (x * 1e6).toFixed(0);
  const serving = sv?.step !== undefined
    ? `; serving per step ${us(sv.step)} us${sv.busy !== undefined ? ` at ${(sv.busy * 100).toFixed(0)}% busy` : ''}${sv.light !== undefined ? `, ${us(sv.light.step)} us at ${(sv.light.busy * 100).toFixed(0)}%` : ''}` : '';
  const parts: string[] = [];
  parts.push(`Generated by \`npm run fidelity${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)} in ${o.wall.toFixed(0)} s; do not edit between the markers (rerun it).`);
  parts.push('');
  parts.push(`Machine: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${p.machine.kernels}. ` +
    `Load average (1 min) before each run: ${groups.flatMap((g) => g.runs.map((r) => r.loadBefore.toFixed(1))).join(', ')} (other tenants share these cores).`);
  parts.push('');
  const passes = o.passes.length > 1 ? `; ${o.passes.length} profiles in a row, each number their median (GFLOP/s ${o.passes.map((f) => (f / 1e9).toFixed(0)).join(', ')})` : '';
  parts.push(`Profile: \`${relative(root, o.profilePath)}\`${o.profileSeconds > 0 ? ` (measured by this run in ${o.profileSeconds.toFixed(0)} s${passes})` : ''}, ${p.machine.clock} clock: ` +
    `${(p.devices[0]!.peakFlops / 1e9).toFixed(0)} GFLOP/s, ${(p.devices[0]!.memoryBandwidth / 1e9).toFixed(1)} GB/s; ` +
    (da !== undefined ? `decode attention ${(da.fixed * 1e6).toFixed(1)} us + ${(da.perHead * 1e6).toFixed(2)} us/head + ${(da.perHeadToken * 1e9).toFixed(1)} ns/head-token; ` : '') +
    (link !== undefined ? `worker link ${(link.latency * 1e6).toFixed(0)} us + ${(link.bandwidth / 1e9).toFixed(2)} GB/s` : '') + `${serving}.`);
  parts.push('');
  parts.push(`Workloads: ${o.traceFile !== undefined ? `the first requests of the Azure conversation trace (\`${relative(root, o.traceFile)}\`), rescaled to each rate, prompt and output lengths x ${TRACE_SCALE} and fitted to the 256-token context; ` : ''}` +
    `Poisson arrivals with prompt and output lengths uniform in [16, 128]. Each run sends ${RUN_SECONDS} s of arrivals (at least ${MIN_REQUESTS} requests), greedy, non-streaming, prompts as token ids` +
    (REPEATS > 1 ? `; every workload and rate runs ${REPEATS} times, each replayed on its own, and the tables compare the median of the real runs with the median of their replays; *(spread)*: how far the furthest single real run was from that median. ` : '. ') +
    '*busy*: share of the real run\'s time its engine spent in steps (median); *machine*: how much slower one-token dense work ran right before the runs than right after profiling (median; timed in a fresh process; other tenants share these cores, and the simulator only knows the profile); *decode err*: the real run\'s decode steps against their predictions (signed median of predicted / measured - 1, median over the runs): how fast the machine ran against its profile as the steps saw it (negative: slower than the profile); *(sat.)*: the real run completed requests more slowly than 90% of the rate they arrived at, or its engine was busy 85% of the time or more (the knee of the queue), in most of the runs.');
  parts.push('');
  for (const layout of o.layouts) {
    const mine = groups.filter((g) => g.layout === layout);
    if (mine.length === 0) continue;
    const runs = mine.flatMap((g) => g.runs);
    const l = LAYOUTS[layout]!;
    parts.push(`### Layout \`${layout}\`: \`hetis serve ${l.flags}\``);
    parts.push('');
    parts.push(`Simulate it: \`npx hetis simulate --cluster local --primary-kv ${l.primaryKv} --attention ${l.attention} --model models/hetis-kjv.gguf --workload FILE\`.`);
    parts.push('');
    parts.push(`Request level, real against simulated (error = simulated / real - 1; TTFT in s, TPOT and step times in ms${REPEATS > 1 ? '; medians over the runs' : ''}):`);
    parts.push('');
    parts.push(figureTable(mine));
    const t = targetCheck(mine.map((g) => g.combined), mine.map((g) => g.runs.flatMap((r) => r.steps)));
    const single = targetCheck(runs.map((r) => r.comparison), runs.map((r) => r.steps));
    parts.push(`Against the targets, workloads below saturation (${t.runs} of ${mine.length}): largest |error| of TPOT P50/P95 ${abs(t.tpot)} (target 10%), of throughput ${abs(t.throughput)} (10%), ` +
      `of TTFT P50/P95 ${abs(t.ttft)} (20%); per-step |error| at the median ${abs(t.stepMedianPooled)} over all their steps, ${abs(t.stepMedian)} in the worst workload (15%).` +
      (REPEATS > 1 ? ` Single real runs strayed from their median by up to ${abs(t.tpotSpread)} in TPOT and ${abs(t.ttftSpread)} in TTFT; compared run by run (each run against its own replay) the largest |error| below saturation is ${abs(single.tpot)} in TPOT, ${abs(single.throughput)} in throughput and ${abs(single.ttft)} in TTFT.` : ''));
    parts.push('');
    parts.push('Per step, every real step of these runs (error = predicted / measured - 1; *migration*: any step that moved heads first):');
    parts.push('');
    parts.push(stepTable(runs));
    parts.push('');
    const files = charts(groups, layout);
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

await main();
