// Owns: the `hetis simulate` command: workload and systems in, one run per (system, rate) on the
// virtual clock, a table or JSON lines out, and the files of --out (charts and results.csv by
// sim/report.ts); and `--cluster local`: the local CPU cluster exactly as `hetis serve` starts it
// (same flags, devices, profile and engine configuration). Must not: simulate (sim/ does).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HetisError } from '../util/errors.js';
import { loadCluster } from '../hardware/cluster.js';
import { resolveModelSpec } from '../model/catalog.js';
import { createRooflineCostModel } from '../cost/roofline.js';
import { FP16 } from '../cost/types.js';
import { DEFAULT_PLANNER_OPTIONS } from '../planner/types.js';
import { loadWorkload } from '../sim/workload.js';
import { describeWorkload, planningSummary } from '../sim/workload-stats.js';
import { runEngines, systemConfigs, SYSTEMS, type SystemName } from '../sim/simulate.js';
import { runMetrics, type RunMetrics } from '../sim/metrics.js';
import { digestRun, writeReport, type RunDigest } from '../sim/report.js';
import { createProgress } from './progress.js';
import type { EngineConfig } from '../engine/engine.js';
import type { ProfileFile } from '../cost/profile-types.js';
import { profileCachePath, profileFits } from './profile.js';
import type { ModelSpec } from '../model/spec.js';
import { layoutDevices, type ClusterLayout } from '../runtime/cluster-layout.js';
import { localEngineConfig, SERVING_TUNING } from '../runtime/local-devices.js';
import { SIM_EOS } from '../sim/executor.js';
import { fitToContext } from '../sim/evaluation.js';
import { parseBytes } from '../util/units.js';
import { parseAttentionList } from './serve.js';

export interface SimulateFlags {
  cluster: string;
  model: string;
  workload: string;
  rate?: string;
  duration?: number;
  count?: number;
  systems: string;
  seed: number;
  tpotSlo: number;
  ttftSlo: number;
  json?: boolean;
  out?: string;
  /** `--cluster local` only, as `hetis serve` reads them (same defaults). */
  primaryKv?: string;
  attention?: string;
  tp?: number;
  pp?: number;
  profile?: string;
}

/** `--cluster local`: the cluster `hetis serve` starts on this machine by default. */
export const LOCAL_CLUSTER = 'local';

/** The profile `hetis serve` reads for `spec`: the given file, else its cache (.hetis-cache/profile-<model>.json). */
export function localProfile(spec: ModelSpec, path: string | undefined): { profile: ProfileFile; path: string } {
  const file = path ?? profileCachePath(spec);
  if (!existsSync(file)) {
    throw new HetisError('bad_input', `no profile of this machine at ${file}: run \`hetis profile --model MODEL --out ${file}\` (or \`hetis serve\` once), or pass --profile FILE`);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as ProfileFile;
  if (!profileFits(profile, spec)) throw new HetisError('bad_input', `${file} has no tables for ${spec.name}'s shape`);
  return { profile, path: file };
}

/**
 * The engine configuration of `hetis serve` on the local cluster the flags describe
 * (server/cluster-backend.ts builds the same from the same layout), with the simulated
 * sampler's EOS.
 */
export function localClusterConfig(spec: ModelSpec, f: Pick<SimulateFlags, 'primaryKv' | 'attention' | 'tp' | 'pp' | 'profile'>): { config: EngineConfig; layout: ClusterLayout; profilePath: string } {
  const tp = f.tp ?? 1, pp = f.pp ?? 1;
  const layout: ClusterLayout = {
    primary: { id: 'primary', tp, stages: pp, kvCapacityBytes: parseBytes(f.primaryKv ?? '32MiB', '--primary-kv') },
    attention: parseAttentionList(f.attention ?? '64MiB,32MiB:2'), blockSize: SERVING_TUNING.blockSize,
  };
  const { profile, path } = localProfile(spec, f.profile);
  return { config: localEngineConfig(spec, layoutDevices(layout), [SIM_EOS], { profile, tp, stages: pp }), layout, profilePath: path };
}

/** Folders searched for the trace presets' files: $HETIS_TRACE_DIR, ./data/traces, ../shared/data/traces (from here and from the package). */
function traceDirs(): string[] {
  const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  return [process.env['HETIS_TRACE_DIR'], 'data/traces', '../shared/data/traces', join(pkg, '../shared/data/traces')].filter((d): d is string => d !== undefined);
}

function parseSystems(list: string): SystemName[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = names.filter((n) => !(SYSTEMS as readonly string[]).includes(n));
  if (bad.length > 0) throw new HetisError('bad_input', `unknown system${bad.length > 1 ? 's' : ''} ${bad.join(', ')} (known: ${SYSTEMS.join(', ')})`);
  return names as SystemName[];
}

function parseRates(list: string | undefined): (number | undefined)[] {
  if (list === undefined) return [undefined];
  return list.split(',').map((s) => {
    const r = Number(s);
    if (!(r > 0)) throw new HetisError('bad_input', `--rate must be positive numbers separated by commas, got '${s}'`);
    return r;
  });
}

function line(system: string, rate: number | undefined, m: RunMetrics): Record<string, unknown> {
  return {
    system, rate: rate ?? null, throughput_tok_s: m.throughputTokS, throughput_req_s: m.throughputReqS, goodput_req_s: m.goodputReqS,
    ttft_p50_s: m.ttft.p50, ttft_p95_s: m.ttft.p95, ttft_p99_s: m.ttft.p99, tpot_p50_s: m.tpot.p50, tpot_p95_s: m.tpot.p95, tpot_p99_s: m.tpot.p99,
    e2e_p50_s: m.e2e.p50, e2e_p95_s: m.e2e.p95, completed: m.completed, dropped: m.dropped, preemptions: m.preemptions,
    migrations: m.migrations, migrated_bytes: m.migratedBytes, steps: m.steps, makespan_s: m.makespan,
  };
}

export async function simulateCommand(f: SimulateFlags): Promise<void> {
  const local = f.cluster === LOCAL_CLUSTER;
  const model = resolveModelSpec(f.model);
  const localConfig = local ? localClusterConfig(model, f) : undefined;
  if (localConfig !== undefined) process.stderr.write(`hetis simulate: the local cluster of \`hetis serve\` with ${localConfig.profilePath}\n`);
  const cluster = local ? undefined : loadCluster(f.cluster);
  const cost = createRooflineCostModel(model, FP16);
  // The local cluster runs one system: Hetis as `hetis serve` runs it.
  const systems: string[] = local ? ['hetis'] : parseSystems(f.systems);
  const rates = parseRates(f.rate);
  const options = { ...DEFAULT_PLANNER_OPTIONS, tpotSlo: f.tpotSlo };
  const rows: Record<string, unknown>[] = [];
  const digests: RunDigest[] = [];
  for (const rate of rates) {
    const w = loadWorkload(f.workload, {
      seed: f.seed, traceDirs: traceDirs(),
      ...(rate !== undefined ? { rate } : {}), ...(f.duration !== undefined ? { duration: f.duration } : {}), ...(f.count !== undefined ? { count: f.count } : {}),
    });
    // Clients ask for generous limits; each request ends where its trace says (EOS), not at a cap the dispatcher could read.
    // Requests longer than the model's context are cut as evaluation harnesses cut them
    // (fitToContext), so a long prompt is not prefilled in full to stop after one token.
    const fitted = fitToContext(w.requests, model.contextLength);
    const cut = fitted.filter((r, i) => r !== w.requests[i]).length;
    if (cut > 0) process.stderr.write(`hetis simulate: ${cut} of ${fitted.length} requests cut to the ${model.contextLength}-token context (prompt shortened, output at most half the window)\n`);
    const requests = fitted.map((r) => ({ ...r, maxTokens: Math.max(r.outputLength ?? 0, 2048) }));
    const summary = { ...planningSummary(describeWorkload(w)), ...(rate !== undefined ? { rate } : {}) };
    for (const system of systems) {
      const configs = localConfig !== undefined ? [localConfig.config] : systemConfigs(system as SystemName, cluster!, cost, summary, options).configs;
      const progress = createProgress(process.stderr, `simulate ${system}${rate !== undefined ? ` @ ${rate} req/s` : ''}`);
      const run = await runEngines(configs, requests, undefined, (done, total) => progress.update(done, total, `requests, ${done}/${total}`), { utilisation: f.out !== undefined });
      progress.finish();
      const m = runMetrics(run.records, run.steps, { ttft: f.ttftSlo, tpot: f.tpotSlo });
      const row = line(system, rate, m);
      rows.push(row);
      if (f.out !== undefined) digests.push(digestRun(system, rate, row, m, run.records, run.steps));
      if (f.json) process.stdout.write(`${JSON.stringify(row)}\n`);
      else {
        process.stdout.write(`${system.padEnd(22)} rate ${rate ?? '(trace)'}  ${m.throughputTokS.toFixed(0)} tok/s  ${m.throughputReqS.toFixed(2)} req/s  ` +
          `TTFT p50/p95 ${m.ttft.p50.toFixed(2)}/${m.ttft.p95.toFixed(2)} s  TPOT p50/p95 ${(m.tpot.p50 * 1e3).toFixed(1)}/${(m.tpot.p95 * 1e3).toFixed(1)} ms  ` +
          `completed ${m.completed} dropped ${m.dropped} preempted ${m.preemptions} migrations ${m.migrations}\n`);
      }
      if (f.out !== undefined) {
        mkdirSync(f.out, { recursive: true });
        const tag = `${system}${rate !== undefined ? `-${rate}` : ''}`;
        writeFileSync(join(f.out, `requests-${tag}.csv`), ['id,arrival,prompt,output,first_token_at,finished_at,finish_reason,preemptions',
          ...run.records.map((r) => [r.id, r.arrival, r.promptLength, r.outputLength, r.firstTokenAt ?? '', r.finishedAt, r.finishReason, r.preemptions].join(','))].join('\n') + '\n');
      }
    }
  }
  if (f.out !== undefined) {
    writeFileSync(join(f.out, 'results.json'), `${JSON.stringify(rows, null, 2)}\n`);
    const { warning } = writeReport(f.out, digests, `${basename(f.model)}, ${basename(f.workload)}, ${local ? 'local cluster' : basename(f.cluster)}`);
    if (warning !== undefined) process.stderr.write(`warning: ${warning}\n`);
  }
}
