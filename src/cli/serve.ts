// Owns: the `hetis serve` command: loading the model, finding or measuring this machine's
// profile, choosing the cluster (a local one of worker processes by default, workers started by
// hand from a cluster file, or everything in this process), building the engine's devices, and
// running the HTTP server until interrupted. Must not: contain serving logic (server/ and
// runtime/ do).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import type { ProfileFile } from '../cost/profile-types.js';
import { createRooflineCostModel } from '../cost/roofline.js';
import { FP16 } from '../cost/types.js';
import { loadCluster } from '../hardware/cluster.js';
import type { ModelSpec } from '../model/spec.js';
import { planDeployment } from '../planner/plan.js';
import { DEFAULT_PLANNER_OPTIONS } from '../planner/types.js';
import { loadWorkloadSummary } from '../planner/workload.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { layoutFromPlan } from '../runtime/cluster-file.js';
import type { ClusterLayout } from '../runtime/cluster-layout.js';
import { getKernels, type KernelPreference } from '../runtime/kernel-select.js';
import { SERVING_TUNING } from '../runtime/local-devices.js';
import { profileLocal } from '../runtime/profile.js';
import { inProcessBackend, type ServeBackend } from '../server/backend.js';
import { localClusterBackend, remoteClusterBackend } from '../server/cluster-backend.js';
import { startServer } from '../server/server.js';
import { HetisError } from '../util/errors.js';
import { formatBytes, parseBytes } from '../util/units.js';
import { DEFAULT_MODEL, openModel } from './open-model.js';
import { profileCachePath, profileFits } from './profile.js';

export interface ServeFlags {
  model?: string;
  tokenizer?: string;
  name?: string;
  host: string;
  port: number;
  apiKey?: string;
  maxQueued: number;
  maxConnections: number;
  maxBody: string;
  cluster?: string;
  token?: string;
  primaryKv: string;
  attention: string;
  tp: number;
  pp: number;
  inProcess?: boolean;
  profile?: string;
  threads: number;
  kernels: KernelPreference;
}

const say = (line: string): void => { process.stderr.write(`hetis serve: ${line}\n`); };

/** '64MiB,32MiB:2' -> attention devices attn-1 (64 MiB), attn-2 (32 MiB, twice as slow). */
export function parseAttentionList(text: string): ClusterLayout['attention'] {
  if (text.trim() === '' || text.trim() === 'none') return [];
  return text.split(',').map((item, i) => {
    const [size, slow] = item.split(':');
    const slowdown = slow === undefined ? 1 : Number(slow);
    if (!(slowdown >= 1)) throw new HetisError('bad_input', `--attention: slowdown '${slow}' of '${item}' must be a number >= 1`);
    return { id: `attn-${i + 1}`, kvCapacityBytes: parseBytes(size ?? '', `--attention item ${i + 1}`), ...(slowdown !== 1 ? { slowdown } : {}) };
  });
}

/** The profile of this machine for `spec`'s shape: the given file, the cached one, or a quick measurement (cached). */
async function findProfile(spec: ModelSpec, modelPath: string, path: string | undefined, threads: number, kernels: KernelPreference): Promise<ProfileFile> {
  const read = (p: string): ProfileFile => JSON.parse(readFileSync(p, 'utf8')) as ProfileFile;
  if (path !== undefined) return read(path);
  const cache = profileCachePath(spec);
  if (existsSync(cache)) {
    const p = read(cache);
    if (profileFits(p, spec)) { say(`profile: ${cache}`); return p; }
  }
  say('profiling this machine for the model (quick; run `hetis profile --model ...` for a full profile)');
  const p = await profileLocal({ model: spec, threads, kernels, quick: true, modelPath: resolve(modelPath) });
  mkdirSync(dirname(cache), { recursive: true });
  writeFileSync(cache, `${JSON.stringify(p, null, 2)}\n`);
  say(`profile written to ${cache}`);
  return p;
}

function describe(layout: ClusterLayout): void {
  const p = layout.primary;
  say(`plan: ${p.id}: ${p.tp > 1 ? `TP=${p.tp} ` : ''}${p.stages > 1 ? `PP=${p.stages} ` : ''}dense layers and prefill, KV ${formatBytes(p.kvCapacityBytes)}`);
  for (const a of layout.attention) say(`plan: ${a.id}: attention worker, KV ${formatBytes(a.kvCapacityBytes)}${a.slowdown ? `, emulated ${a.slowdown}x slower` : ''}`);
}

async function clusterBackend(f: ServeFlags, spec: ModelSpec, modelPath: string, name: string, tokenizer: Tokenizer, profile: ProfileFile): Promise<ServeBackend> {
  const common = { name, spec, tokenizer, modelPath: resolve(modelPath), profile, log: (l: string) => say(l) };
  if (f.cluster !== undefined) {
    const cluster = loadCluster(f.cluster);
    const plan = planDeployment(cluster, createRooflineCostModel(spec, FP16), loadWorkloadSummary('sharegpt'), DEFAULT_PLANNER_OPTIONS);
    const r = layoutFromPlan(cluster, plan, spec, SERVING_TUNING.blockSize);
    for (const n of r.notes) say(n);
    describe(r.layout);
    const token = f.token ?? process.env['HETIS_TOKEN'];
    return remoteClusterBackend({ ...common, layout: r.layout, addresses: r.addresses, ...(token ? { token } : {}) });
  }
  const layout: ClusterLayout = { primary: { id: 'primary', tp: f.tp, stages: f.pp, kvCapacityBytes: parseBytes(f.primaryKv, '--primary-kv') }, attention: parseAttentionList(f.attention), blockSize: SERVING_TUNING.blockSize };
  describe(layout);
  say(`starting ${f.tp * f.pp + layout.attention.length} worker processes`);
  return localClusterBackend({
    ...common, layout, threads: f.threads, kernels: f.kernels, ...(f.token ? { token: f.token } : {}),
    log: (l: string) => process.stderr.write(`${l}\n`),
  });
}

export async function serveCommand(f: ServeFlags): Promise<void> {
  const maxBodyBytes = parseBytes(f.maxBody, '--max-body'); // flags first, before any process starts
  const modelPath = f.model ?? DEFAULT_MODEL;
  const { model, tokenizer } = openModel(f.model, f.tokenizer);
  const spec = model.spec;
  const modelName = f.name ?? basename(modelPath, extname(modelPath));
  const kernels = getKernels(f.kernels);
  kernels.setThreads(f.threads);
  let backend: ServeBackend;
  if (f.inProcess === true) {
    backend = inProcessBackend(model, tokenizer, { name: modelName, kernels, kvCapacityBytes: parseBytes(f.primaryKv, '--primary-kv') });
    say('in-process: one device holds every head');
  } else {
    const profile = await findProfile(spec, modelPath, f.profile, f.threads, f.kernels);
    backend = await clusterBackend(f, spec, modelPath, modelName, tokenizer, profile);
  }
  const server = await startServer(backend, {
    host: f.host, port: f.port, ...(f.apiKey !== undefined ? { apiKey: f.apiKey } : {}),
    maxQueued: f.maxQueued, maxConnections: f.maxConnections, maxBodyBytes, log: (l) => say(l),
  });
  say(`serving ${modelName} on ${server.url} (OpenAI API under /v1; docs/serving.md)`);
  process.stdout.write(`${server.url}\n`);
  await new Promise<void>((resolveStop) => {
    const stop = (): void => { say('stopping'); resolveStop(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}
