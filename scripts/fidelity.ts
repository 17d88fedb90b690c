// The simulator against real serving on the cluster we can run: the local CPU cluster as `hetis
// serve` starts it. Profiles this machine (what `hetis profile` writes, into the cache `hetis
// serve` and `hetis simulate --cluster local` read), then for each cluster layout and workload
// (the Azure conversation trace scaled to the built-in model's 256-token context, and a
// synthetic Poisson one) at rates from light to saturating: runs the workload for real against
// the server and saves exactly what the engine recorded; then replays every saved run's requests
// (arrivals, lengths, max_tokens, generated lengths) on the simulator's virtual clock with the
// engine configuration `hetis simulate --cluster local` builds for the layout, and compares.
// Every workload and rate runs --repeats times (the machine is shared, and one run's TPOT moves
// by 10-30% from the next's); the tables compare the medians of the real runs with the medians
// of their replays, and say how far single real runs strayed. The profile passes are spread
// over the runs (before the first layout, between layouts, after the last), and the replays use
// their median: the machine's speed moves over the minutes the study takes, and a profile taken
// in one stretch before the runs describes only those minutes. Each layout's server runs on the
// median of the passes taken before it. Writes docs/fidelity.md (between its generated markers)
// and its charts (docs/fidelity/); --replay DIR rewrites them from saved runs (another profile
// with --profile) without running anything for real; several DIRs pool their studies' runs, each
// replayed with its own study's profile.
//
//   npm run fidelity [-- --quick] [--profile FILE] [--profile-repeats N] [--layouts default,no-slowdown] [--seconds S] [--repeats N] [--out FILE] [--save DIR]
//   npm run fidelity -- --replay DIR[,DIR...] [--profile FILE] [--out FILE]
//
// One JSON line per run and one per workload and rate (its medians) on stdout, progress on
// stderr. --quick: one layout, two rates, short runs, one repeat, a quick profile (kept beside
// the runs, not in the cache), written to bench/out/fidelity/ unless --out. The runs are saved in --save DIR (default
// bench/out/fidelity-runs, quick: bench/out/fidelity/runs): meta.json, the profile passes and
// their median, and runs.jsonl (one line per real run: the engine's request and step records).

import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProfileFile } from '../src/cost/profile-types.js';
import { medianProfile } from '../src/cost/merge-profiles.js';
import { openModel } from '../src/cli/open-model.js';
import { parseAttentionList } from '../src/cli/serve.js';
import { localClusterConfig } from '../src/cli/simulate.js';
import { profileCachePath } from '../src/cli/profile.js';
import { profileRepeated } from '../src/server/profile-serving.js';
import type { ClusterLayout } from '../src/runtime/cluster-layout.js';
import { SERVING_TUNING } from '../src/runtime/local-devices.js';
import {
  combineRepeats, compareReplay, loadRealRun, poissonWorkload, profilePassSlots, repredictSteps, saveRealRun, scaledTrace, type Comparison, type LoadRequest, type SavedRealRun,
} from '../src/sim/local-fidelity.js';
import { findPresetTrace, loadWorkload } from '../src/sim/workload.js';
import { parseBytes } from '../src/util/units.js';
import { writeDoc, type Group, type ProfilePass, type RunRow, type StudyDoc, type StudyLayout, type StudyMeta } from './fidelity-doc.js';
import { runLoad, startLocalServer } from './fidelity-run.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'string' },
    layouts: { type: 'string' },
    seconds: { type: 'string' },
    repeats: { type: 'string' },
    'profile-repeats': { type: 'string' },
    out: { type: 'string' },
    save: { type: 'string' },
    replay: { type: 'string' },
  },
});

const root = resolve(import.meta.dirname ?? '.', '..');
const quick = args.quick === true;
const docPath = resolve(args.out ?? (quick ? join(root, 'bench/out/fidelity/fidelity.md') : join(root, 'docs/fidelity.md')));
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
/** Profile passes, spread over the runs and merged (each number their median): one is a snapshot of ~90 s of a machine whose speed moves. */
const PROFILE_REPEATS = Number(args['profile-repeats'] ?? (quick ? 1 : 3));
if (!Number.isInteger(PROFILE_REPEATS) || PROFILE_REPEATS < 1) throw new Error(`--profile-repeats must be a positive integer, got ${args['profile-repeats']}`);
if (!(RUN_SECONDS > 0)) throw new Error(`--seconds must be a positive number, got ${args.seconds}`);
/** The warm-up before a layout's runs (not measured). */
const WARMUP = quick ? { rate: 10, count: 50 } : { rate: 10, count: 250 };
/** Trace lengths are scaled by this to suit a 256-token context (Azure conversation: prompt median ~1,000, output ~240). */
const TRACE_SCALE = 0.1;

/** Cluster layouts as `hetis serve` flags: the default, and the same without the emulated slow worker. */
const LAYOUTS: Record<string, Omit<StudyLayout, 'name'>> = {
  default: { flags: '(defaults: --primary-kv 32MiB --attention 64MiB,32MiB:2)', primaryKv: '32MiB', attention: '64MiB,32MiB:2' },
  'no-slowdown': { flags: '--attention 64MiB,32MiB', primaryKv: '32MiB', attention: '64MiB,32MiB' },
};

/** Offered rates, requests/s: light, medium, saturating (the trace's outputs are short, so it takes more requests). */
const RATES = { poisson: quick ? [4, 25] : [3, 8, 25], trace: quick ? [6, 40] : [5, 15, 40] };

/** One real run as saved in runs.jsonl: what it was, and what the engine recorded. */
interface SavedRun extends SavedRealRun {
  layout: string;
  workload: 'trace' | 'poisson';
  rate: number;
  repeat: number;
  sent: number;
  failures: string[];
  loadBefore: number;
}

function studyLayout(name: string): StudyLayout {
  const l = LAYOUTS[name];
  if (l === undefined) throw new Error(`unknown layout '${name}' (known: ${Object.keys(LAYOUTS).join(', ')})`);
  return { name, ...l };
}

function clusterLayout(l: StudyLayout): ClusterLayout {
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

/** Profiles the machine in passes spread over the layouts (profilePassSlots); `at(slot)` runs the passes of a slot. */
function profilePasses(names: readonly string[]): { at(slot: number): Promise<void>; current(): ProfileFile; passes: ProfilePass[]; files: ProfileFile[]; seconds(): number } {
  const slots = profilePassSlots(PROFILE_REPEATS, names.length);
  const files: ProfileFile[] = [], passes: ProfilePass[] = [];
  let seconds = 0;
  const where = (slot: number): string => (slot === 0 ? `before ${names[0]}` : slot === names.length ? `after ${names[slot - 1]}` : `between ${names[slot - 1]} and ${names[slot]}`);
  return {
    passes, files, seconds: () => seconds,
    current: () => medianProfile(files),
    async at(slot) {
      for (let k = 0; k < slots.length; k++) {
        if (slots[k] !== slot) continue;
        const label = `pass ${k + 1} of ${slots.length} (${where(slot)})`;
        log(`profiling this machine for the built-in model, ${label} (${quick ? 'quick grid' : 'full grid'}; what \`hetis profile --model models/hetis-kjv.gguf${quick ? ' --quick' : ''}\` measures)`);
        const t0 = performance.now();
        let last = 0;
        const { profile } = await profileRepeated({
          model, quick, modelPath, passes: 1,
          onProgress: (d, t, l) => { if (d === t || performance.now() - last > 5000) { last = performance.now(); log(`profile ${label}: ${l} (${d}/${t})`); } },
        });
        seconds += (performance.now() - t0) / 1000;
        files.push(profile);
        passes.push({ at: where(slot), flops: profile.devices[0]!.peakFlops });
      }
    },
  };
}

/** Runs every layout's workloads for real, saving each run to `dir`; returns what the study was. */
async function collect(dir: string, names: readonly string[], workloads: readonly ('trace' | 'poisson')[], traceFile: string | undefined): Promise<{ meta: StudyMeta; profilePath: string }> {
  const started = performance.now();
  mkdirSync(dir, { recursive: true });
  const runsFile = join(dir, 'runs.jsonl');
  writeFileSync(runsFile, '');
  const given = args.profile !== undefined ? JSON.parse(readFileSync(args.profile, 'utf8')) as ProfileFile : undefined;
  // A full study's profile goes to the cache `hetis serve` and `hetis simulate --cluster local`
  // read; a quick one (a quick grid, no serving probe) stays beside its runs.
  const profilePath = given !== undefined ? resolve(args.profile!) : quick ? join(dir, 'profile.json') : cachePath;
  const profiling = profilePasses(names);
  for (let i = 0; i < names.length; i++) {
    const layout = studyLayout(names[i]!);
    if (given === undefined) await profiling.at(i);
    log(`layout ${layout.name}: starting the local cluster (${1 + parseAttentionList(layout.attention).length} worker processes)`);
    const server = await startLocalServer({ modelPath, layout: clusterLayout(layout), profile: given ?? profiling.current() });
    try {
      // Warm-up: the worker processes' JIT takes tens of seconds of varied work to settle (after
      // 20 requests, the first run's decode steps were still 10-20% slower than later runs').
      log(`${layout.name}: warming up (${WARMUP.count} requests at ${WARMUP.rate} req/s)`);
      await runLoad(server, poissonWorkload({ seed: 99, ...WARMUP, prompt: [16, 128], output: [8, 64], context: server.contextLength }), 99);
      for (const workload of workloads) {
        for (const rate of RATES[workload]) {
          const requests = workloadAt(workload, rate, server.contextLength);
          for (let repeat = 1; repeat <= REPEATS; repeat++) {
            const loadBefore = loadavg()[0]!;
            log(`${layout.name} ${workload} @ ${rate} req/s: ${requests.length} requests${REPEATS > 1 ? `, run ${repeat} of ${REPEATS}` : ''}`);
            const run = await runLoad(server, requests, rate);
            const saved: SavedRun = { layout: layout.name, workload, rate, repeat, sent: requests.length, failures: run.failures, loadBefore, ...saveRealRun(run) };
            appendFileSync(runsFile, `${JSON.stringify(saved)}\n`);
            if (run.failures.length > 0) log(`  ${run.failures.length} requests failed, e.g. ${run.failures[0]}`);
          }
        }
      }
    } finally {
      await server.close();
    }
    saveStudy();
  }
  if (given === undefined) await profiling.at(names.length);
  if (given === undefined && !quick) {
    mkdirSync(dirname(cachePath), { recursive: true });
    writeFileSync(cachePath, `${JSON.stringify(profiling.current(), null, 2)}\n`);
  }
  return { meta: saveStudy(), profilePath };

  /**
   * meta.json, the passes and their median (the given profile instead) as they stand: written
   * after each layout too, so the runs saved so far can be replayed if the study stops early.
   */
  function saveStudy(): StudyMeta {
    const profile = given ?? profiling.current();
    profiling.files.forEach((p, k) => writeFileSync(join(dir, `profile-pass-${k + 1}.json`), `${JSON.stringify(p)}\n`));
    writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(profile, null, 2)}\n`);
    const meta: StudyMeta = {
      date: new Date().toISOString(), wall: (performance.now() - started) / 1000, quick, repeats: REPEATS, runSeconds: RUN_SECONDS, minRequests: MIN_REQUESTS, traceScale: TRACE_SCALE,
      ...(traceFile !== undefined ? { traceFile: relative(root, traceFile) } : {}),
      layouts: names.map(studyLayout),
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: totalmem() / 2 ** 30, node: process.version },
      profile: { path: relative(root, profilePath), seconds: profiling.seconds(), passes: [...profiling.passes] },
    };
    writeFileSync(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  }
}

/**
 * Replays every run saved in `dir` with the engine configuration `hetis simulate --cluster local
 * --profile PROFILE` builds for its layout, and compares; one JSON line per run and per group.
 */
async function replaySaved(dir: string, meta: StudyMeta, profilePath: string): Promise<RunRow[]> {
  const configs = new Map(meta.layouts.map((l) => [l.name, localClusterConfig(model.spec, { primaryKv: l.primaryKv, attention: l.attention, profile: profilePath }).config]));
  const lines = readFileSync(join(dir, 'runs.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error(`${join(dir, 'runs.jsonl')} holds no runs`);
  const rows: RunRow[] = [];
  log(`replaying ${lines.length} real runs on the virtual clock (profile ${relative(root, profilePath)})`);
  for (const text of lines) {
    const s = JSON.parse(text) as SavedRun;
    const config = configs.get(s.layout);
    if (config === undefined) throw new Error(`a saved run names layout '${s.layout}', which meta.json does not list`);
    // The real steps against the replays' profile (the server predicted them with its own, the passes before its layout).
    const real = loadRealRun(s);
    const steps = repredictSteps(config, real.steps);
    const { replay: _replay, ...comparison } = await compareReplay(config, { ...real, steps }, SLO);
    rows.push({ layout: s.layout, workload: s.workload, rate: s.rate, sent: s.sent, failures: s.failures.length, loadBefore: s.loadBefore, comparison, steps });
    jsonLine({ kind: 'run', study: relative(root, dir), layout: s.layout, workload: s.workload, rate: s.rate, repeat: s.repeat, requests: comparison.requests, failures: s.failures.length, mismatched: comparison.mismatched.length }, comparison);
  }
  return rows;
}

/** The runs of each layout, workload and rate together (in the order they first came), their medians compared; one JSON line each. */
function groupRuns(rows: readonly RunRow[]): Group[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of rows) {
    const key = `${r.layout}\u0000${r.workload}\u0000${r.rate}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.values()].map((runs) => {
    const { layout, workload, rate } = runs[0]!;
    const combined = combineRepeats(runs.map((r) => r.comparison), runs.map((r) => r.steps));
    jsonLine({ kind: 'median', layout, workload, rate, repeats: runs.length, requests: combined.requests, mismatched: combined.mismatched.length }, combined);
    return { layout, workload, rate, runs, combined };
  });
}

function jsonLine(o: Record<string, unknown>, c: Pick<Comparison, 'figures' | 'steps' | 'saturated'>): void {
  process.stdout.write(`${JSON.stringify({
    ...o, saturated: c.saturated,
    ...Object.fromEntries(c.figures.map((f) => [f.name.replace(/ /g, '_').toLowerCase(), { real: +f.real.toPrecision(4), sim: +f.sim.toPrecision(4), error: +f.error.toFixed(3), ...('spread' in f ? { spread: +(f.spread as number).toFixed(3) } : {}) }])),
    step_error_p50: Object.fromEntries(c.steps.map((s) => [s.kind, +s.p50.toFixed(3)])),
  })}\n`);
}

async function main(): Promise<void> {
  if (args.replay !== undefined) {
    // Each saved study replayed with its own profile (or --profile for all), their runs pooled.
    const dirs = args.replay.split(',').map((d) => resolve(d));
    const studies: StudyDoc[] = [], rows: RunRow[] = [];
    for (const dir of dirs) {
      if (!existsSync(join(dir, 'meta.json'))) throw new Error(`${dir} holds no saved study (meta.json; written by \`npm run fidelity -- --save DIR\`)`);
      const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as StudyMeta;
      const profilePath = resolve(args.profile ?? join(dir, 'profile.json'));
      rows.push(...await replaySaved(dir, meta, profilePath));
      const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as ProfileFile;
      studies.push({ meta: { ...meta, profile: args.profile !== undefined ? { path: relative(root, profilePath), seconds: 0, passes: [] } : { ...meta.profile, path: relative(root, profilePath) } }, profile });
    }
    const groups = groupRuns(rows);
    writeDoc(docPath, groups, studies, { from: dirs.map((d) => relative(root, d)), date: new Date().toISOString() });
    log(`wrote ${relative(root, docPath)} from ${rows.length} saved runs`);
    return;
  }
  const traceFile = findPresetTrace('azure-conv', traceDirs());
  const workloads: ('trace' | 'poisson')[] = traceFile !== undefined ? ['trace', 'poisson'] : ['poisson'];
  if (traceFile === undefined) log('the Azure conversation trace (splitwise_conv.csv) is not in ../shared/data/traces or $HETIS_TRACE_DIR: the trace workload is skipped');
  const names = (args.layouts ?? (quick ? 'default' : 'default,no-slowdown')).split(',');
  names.forEach(studyLayout); // unknown names fail before any profiling
  const dir = resolve(args.save ?? join(root, quick ? 'bench/out/fidelity/runs' : 'bench/out/fidelity-runs'));
  const { meta, profilePath } = await collect(dir, names, workloads, traceFile);
  const groups = groupRuns(await replaySaved(dir, meta, profilePath));
  const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as ProfileFile;
  writeDoc(docPath, groups, [{ meta, profile }]);
  log(`wrote ${relative(root, docPath)} (${meta.wall.toFixed(0)} s; the runs are in ${relative(root, dir)}: \`npm run fidelity -- --replay ${relative(root, dir)}\` replays them again)`);
}

await main();
