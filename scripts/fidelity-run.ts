// The real half of the fidelity study (scripts/fidelity.ts, test/fidelity.test.ts): a local
// cluster of worker processes behind the HTTP server, as `hetis serve` starts it, in this process
// (so the engine's request and step records can be read directly), and an open-loop client in a
// process of its own (scripts/fidelity-client.ts) that sends a workload's requests at their
// arrival times (prompts as token ids of exact lengths, greedy, non-streaming) and records what
// each asked for.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProfileFile } from '../src/cost/profile-types.js';
import type { Engine, EngineConfig } from '../src/engine/engine.js';
import type { Tokenizer } from '../src/model/tokenizer.js';
import type { ClusterLayout } from '../src/runtime/cluster-layout.js';
import { localClusterBackend } from '../src/server/cluster-backend.js';
import { generatedPrompt } from '../src/server/loadgen.js';
import { startServer } from '../src/server/server.js';
import type { LoadRequest, LoadSampling, RealRun } from '../src/sim/local-fidelity.js';
import { openModel } from '../src/cli/open-model.js';
import { createRng } from '../src/util/rng.js';

export interface LocalServer {
  url: string;
  modelName: string;
  engine: Engine;
  /** The engine configuration the server runs with (what `hetis simulate --cluster local` rebuilds). */
  config: EngineConfig;
  tokenizer: Tokenizer;
  contextLength: number;
  /** Process ids of the worker processes. */
  pids: number[];
  close(): Promise<void>;
}

/** Starts the worker processes of `layout` and the HTTP server in front of them (a free port). */
export async function startLocalServer(o: { modelPath: string; layout: ClusterLayout; profile: ProfileFile; name?: string; log?: (l: string) => void }): Promise<LocalServer> {
  const { model, tokenizer } = openModel(o.modelPath, undefined);
  const name = o.name ?? 'fidelity';
  const backend = await localClusterBackend({
    name, spec: model.spec, tokenizer, modelPath: o.modelPath, layout: o.layout, profile: o.profile,
    ...(o.log !== undefined ? { log: o.log } : {}),
  });
  // Keep every record (the server bounds the engine's history by default; a run is read at its end).
  backend.engineConfig = { ...backend.engineConfig, history: Number.MAX_SAFE_INTEGER };
  const server = await startServer(backend, { port: 0, maxQueued: 4096 });
  return {
    url: server.url, modelName: name, engine: server.engine, config: backend.engineConfig, tokenizer, contextLength: model.spec.contextLength,
    pids: backend.local?.processes.map((p) => p.pid ?? 0) ?? [],
    close: () => server.close(),
  };
}

/** A prompt of exactly `n` token ids: BOS, then seeded common words. */
export function promptIds(tokenizer: Tokenizer, seed: number, n: number): number[] {
  const rng = createRng(seed);
  const ids = [tokenizer.bosId];
  while (ids.length < n) ids.push(...tokenizer.encode(` ${generatedPrompt(rng, n)}`));
  return ids.slice(0, n);
}

export interface LoadResult extends RealRun {
  /** Requests the server refused or failed, with the reason. */
  failures: string[];
  /** Seconds from the first request sent to the last response. */
  wall: number;
}

/**
 * Sends `requests` open-loop from a client process of its own (scripts/fidelity-client.ts: each
 * at its arrival time after the start, whatever the server's pace), waits for every response,
 * and returns the engine's records of this run: its requests and the steps taken from the first
 * arrival to the last response; the engine then forgets its history (`clearHistory`).
 */
export async function runLoad(server: LocalServer, requests: readonly LoadRequest[], seed: number): Promise<LoadResult> {
  const engine = server.engine;
  const firstRecord = engine.records.length, firstStep = engine.steps.length;
  const job = {
    url: server.url, model: server.modelName,
    requests: requests.map((r, i) => ({ arrival: r.arrival, prompt: promptIds(server.tokenizer, seed * 100_003 + i, r.promptLength), maxTokens: r.maxTokens, ...(r.sampling ? { sampling: r.sampling } : {}) })),
  };
  const out = await runClient(JSON.stringify(job), 120 + 2 * Math.max(0, ...requests.map((r) => r.arrival)));
  const maxTokens = new Map(out.accepted.map((a) => [a.id, a.maxTokens]));
  const sampling = new Map(out.accepted.flatMap((a) => (a.sampling !== undefined ? [[a.id, a.sampling] as const] : [])));
  const records = engine.records.slice(firstRecord).filter((r) => maxTokens.has(r.id));
  if (records.length !== maxTokens.size) throw new Error(`the engine kept ${records.length} of the run's ${maxTokens.size} request records (history trimmed?)`);
  const steps = engine.steps.slice(firstStep);
  // Read: the engine forgets them, as a server's bounded history does (kept whole over a layout's
  // runs, its heap grew from 31 to 60 MB and its major collections to ~9 ms, in the later runs' steps).
  engine.clearHistory();
  return { records, steps, maxTokens, ...(sampling.size > 0 ? { sampling } : {}), failures: out.failures, wall: out.wall };
}

/** Runs the client process on `job` (killed after `timeoutSeconds`) and reads its one line of results. */
function runClient(job: string, timeoutSeconds: number): Promise<{ accepted: { id: string; maxTokens: number; sampling?: LoadSampling }[]; failures: string[]; wall: number }> {
  return runScript('fidelity-client.ts', 'the load client', job, timeoutSeconds);
}

/**
 * Runs `script` (in this folder) in a process of its own through tsx, `input` on its stdin,
 * killed after `timeoutSeconds`, and parses the JSON it writes on stdout; `what` names it in errors.
 */
export function runScript<T>(script: string, what: string, input: string, timeoutSeconds: number): Promise<T> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(import.meta.dirname ?? '.', script)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += String(d); });
  child.stderr.on('data', (d: Buffer) => { stderr += String(d); });
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutSeconds * 1000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) { reject(new Error(`${what} (pid ${child.pid}) exited with ${code}: ${stderr.trim()}`)); return; }
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`${what} wrote no results: ${stdout.slice(0, 200)} ${stderr.trim()}`));
      }
    });
  });
}

/** Reads a profile file. */
export function readProfile(path: string): ProfileFile {
  return JSON.parse(readFileSync(path, 'utf8')) as ProfileFile;
}
