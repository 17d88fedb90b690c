// Owns: measuring what serving over HTTP adds to the engine process's time (the profile's
// `serving`): a real HTTP server over a local cluster running the model file, a client process of
// its own sending it requests open-loop, and the cost of a request's admission, its finish and its
// arrival read off the engine's step records; and the whole profile `hetis profile` writes (the
// runtime's, with these on top, over several passes merged). Must not: leave a process running.

import { spawn } from 'node:child_process';
import { medianProfile } from '../cost/merge-profiles.js';
import type { ProfileFile, ServingProfile } from '../cost/profile-types.js';
import type { RequestRecord, StepRecord } from '../engine/types.js';
import { loadModel } from '../model/load.js';
import { Tokenizer } from '../model/tokenizer.js';
import { SERVING_TUNING } from '../runtime/local-devices.js';
import { profileLocal, type ProfileOptions } from '../runtime/profile.js';
import { HetisError } from '../util/errors.js';
import { median } from '../util/fit.js';
import { BUSY_WINDOW, BusyWindow } from '../engine/busy-window.js';
import { localClusterBackend } from './cluster-backend.js';
import { startServer } from './server.js';

/** Prompt of every probe request, tokens (each is admitted in one chunk). */
const PROMPT = 16;
/** A short request's tokens: its prefill, one decode step, and the step that finishes it. */
const SHORT_TOKENS = 3;
/** Seconds between two short requests (each one arrival, one admission, one finish). */
const SHORT_EVERY = 0.03;
/** Seconds between two long requests (decode steps running under the short ones). */
const LONG_EVERY = 0.25;
/** A gap between two steps longer than this is the engine idling, not its work (seconds). */
const IDLE = 0.002;
/** Fewer steps than this of a kind: its cost is left at 0 (not measured). */
const MIN_SAMPLES = 5;
/** The light run: one request of LIGHT_TOKENS every LIGHT_EVERY seconds for LIGHT_SECONDS, after an idle BUSY_WINDOW. */
const LIGHT_EVERY = 0.2;
const LIGHT_TOKENS = 16;
const LIGHT_SECONDS = 8;

export interface ServingProbeOptions {
  /** The model file the workers load (GGUF or llama2.c with a tokenizer). */
  modelPath: string;
  /** The profile measured so far: the engine's predictions of the probe's steps. */
  profile: ProfileFile;
  /** Seconds the client sends requests for, after as long again of warm-up (default 5). */
  seconds?: number;
  onSpawn?: (pid: number) => void;
}

/** The client (a process of its own, as a server's clients are): sends each request at its time, waits for every response. */
const CLIENT = `
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  const t0 = performance.now();
  let failed = 0;
  const send = async (r) => {
    try {
      const res = await fetch(job.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: job.model, prompt: r.prompt, max_tokens: r.maxTokens, temperature: 0 }) });
      await res.text();
      if (!res.ok) failed++;
    } catch { failed++; }
  };
  const pending = [];
  for (const r of job.requests) {
    const wait = r.at * 1000 - (performance.now() - t0);
    if (wait > 0) await new Promise((s) => setTimeout(s, wait));
    pending.push(send(r));
  }
  await Promise.all(pending);
  process.stdout.write(JSON.stringify({ failed, sent: job.requests.length }) + '\\n');
});
`;

interface ProbeRequest { at: number; prompt: number[]; maxTokens: number }

/** Sends `requests` from a client process; resolves when every response is in (or rejects after `timeoutS`). */
function runClient(url: string, model: string, requests: readonly ProbeRequest[], timeoutS: number, onSpawn?: (pid: number) => void): Promise<{ failed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    let out = '', err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new HetisError('unavailable', `the serving probe's client did not finish in ${timeoutS} s`)); }, timeoutS * 1000);
    child.stdout.on('data', (c) => { out += String(c); });
    child.stderr.on('data', (c) => { err += String(c); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) { reject(new HetisError('unavailable', `the serving probe's client exited with ${String(code)}: ${err.trim()}`)); return; }
      try { resolve(JSON.parse(out) as { failed: number }); } catch { reject(new HetisError('internal', `the serving probe's client wrote ${JSON.stringify(out)}`)); }
    });
    child.stdin.end(JSON.stringify({ url, model, requests }));
  });
}

/** Short requests every SHORT_EVERY and long ones every LONG_EVERY for `seconds`. */
function probeRequests(seconds: number, vocab: number, context: number): ProbeRequest[] {
  const prompt = (k: number): number[] => Array.from({ length: PROMPT }, (_, i) => 1 + ((k * 31 + i * 13) % (vocab - 1)));
  const out: ProbeRequest[] = [];
  const long = Math.max(SHORT_TOKENS, Math.min(200, context - PROMPT - 1));
  for (let t = 0, k = 0; t < seconds; t += LONG_EVERY, k++) out.push({ at: t, prompt: prompt(k), maxTokens: long });
  for (let t = SHORT_EVERY / 3, k = 1000; t < seconds; t += SHORT_EVERY, k++) out.push({ at: t, prompt: prompt(k), maxTokens: SHORT_TOKENS });
  return out.sort((a, b) => a.at - b.at);
}

/** One request of LIGHT_TOKENS every LIGHT_EVERY for LIGHT_SECONDS: the engine mostly idle, as on a light load. */
function lightRequests(vocab: number): ProbeRequest[] {
  const out: ProbeRequest[] = [];
  for (let t = 0, k = 5000; t < LIGHT_SECONDS; t += LIGHT_EVERY, k++) {
    out.push({ at: t, prompt: Array.from({ length: PROMPT }, (_, i) => 1 + ((k * 31 + i * 13) % (vocab - 1))), maxTokens: LIGHT_TOKENS });
  }
  return out;
}

/**
 * Serves requests over HTTP from a local cluster of one primary and one attention worker (short
 * requests arriving every 30 ms over long ones decoding) and returns what each event adds to the
 * engine's time; then, after an idle second, one short request at a time (a light load) for the
 * per-step part again (`light`); see ServingProfile and servingCosts.
 */
export async function measureServing(o: ServingProbeOptions): Promise<ServingProfile> {
  const { model, vocab } = loadModel(o.modelPath);
  if (vocab === undefined) throw new HetisError('bad_input', `${o.modelPath}: the model carries no tokenizer; the serving probe needs one`);
  const spec = model.spec;
  const kv = 32 * 2 ** 20;
  const backend = await localClusterBackend({
    name: 'serving-probe', spec, tokenizer: new Tokenizer(vocab), modelPath: o.modelPath, profile: o.profile,
    layout: { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: kv }, attention: [{ id: 'attn', kvCapacityBytes: kv }], blockSize: SERVING_TUNING.blockSize },
  });
  for (const p of backend.local?.processes ?? []) if (p.pid !== undefined) o.onSpawn?.(p.pid);
  // Keep every record of the run (the server bounds the engine's history by default).
  backend.engineConfig = { ...backend.engineConfig, history: Number.MAX_SAFE_INTEGER };
  let server;
  try {
    server = await startServer(backend, { port: 0, maxQueued: 4096 });
  } catch (e) {
    await backend.close();
    throw e;
  }
  try {
    const seconds = o.seconds ?? 5;
    const engine = server.engine;
    // Warm-up first (a fresh cluster's processes run 10-20% slower until their JIT has seen
    // varied work), then the measured run; both are one client's open-loop schedule.
    const requests = probeRequests(seconds, spec.vocabSize, spec.contextLength);
    const warm = await runClient(server.url, 'serving-probe', requests, 60 + 4 * seconds, o.onSpawn);
    const firstStep = engine.steps.length, firstRecord = engine.records.length;
    const run = await runClient(server.url, 'serving-probe', requests, 60 + 4 * seconds, o.onSpawn);
    const main = servingCosts(engine.steps.slice(firstStep), engine.records.slice(firstRecord), PROMPT);
    await new Promise((r) => setTimeout(r, BUSY_WINDOW * 1000));
    const lightStep = engine.steps.length, lightRecord = engine.records.length;
    const lightRun = await runClient(server.url, 'serving-probe', lightRequests(spec.vocabSize), 60 + 4 * LIGHT_SECONDS, o.onSpawn);
    const failed = warm.failed + run.failed + lightRun.failed;
    if (failed > 0) throw new HetisError('unavailable', `the serving probe's server failed ${failed} of its requests`);
    const light = servingCosts(engine.steps.slice(lightStep), engine.records.slice(lightRecord), PROMPT);
    return { ...main, light: { step: light.step ?? 0, busy: light.busy ?? 0, samples: light.samples.none } };
  } finally {
    await server.close();
  }
}

/** `profile` with the serving costs measured on it (every device profile of the model file). */
export async function withServing(profile: ProfileFile, o: Omit<ServingProbeOptions, 'profile'>): Promise<ProfileFile> {
  const serving = await measureServing({ ...o, profile });
  return { ...profile, profiles: profile.profiles.map((p) => ({ ...p, serving })) };
}

/**
 * What `hetis profile` writes: `profileLocal` `passes` times in a row (default 1), each with the
 * serving costs measured on it when given a model file and not quick (~20 s), merged into one
 * profile whose every number is their median (medianProfile). Progress labels say the pass when
 * there are several. Returns the merged profile and each pass's.
 */
export async function profileRepeated(o: ProfileOptions & { passes?: number }): Promise<{ profile: ProfileFile; passes: ProfileFile[] }> {
  const { passes: n = 1, ...options } = o;
  if (!(Number.isInteger(n) && n >= 1)) throw new HetisError('bad_input', `--repeats must be a whole number of at least 1 (got ${n})`);
  const passes: ProfileFile[] = [];
  for (let r = 0; r < n; r++) {
    const pass = n > 1 ? `pass ${r + 1} of ${n}: ` : '';
    let one = await profileLocal({ ...options, onProgress: (done, total, label) => o.onProgress?.(done, total, pass + label) });
    if (o.modelPath !== undefined && o.quick !== true) {
      o.onProgress?.(1, 1, `${pass}serving over HTTP (a server over a local cluster, a client process; ~20 s)`);
      one = await withServing(one, { modelPath: o.modelPath, ...(o.onSpawn !== undefined ? { onSpawn: o.onSpawn } : {}) });
    }
    passes.push(one);
  }
  return { profile: medianProfile(passes), passes };
}

/**
 * The serving costs from a served run's records, every prompt `prompt` tokens (one chunk each).
 * For each step followed by another with no idle between them: its gap (the next start less its
 * end) and its interval's excess over its prediction (the next start less its start, less its
 * predicted seconds), and its events: requests it admitted (prefill tokens / prompt), requests it
 * finished (records ending at its end), and requests arriving during its interval. `admitted` and
 * `finished` are the median gap of the steps with that one event alone less that of the steps with
 * none (both land between the steps: placing heads, building and sending the response); `arrival`
 * is the median excess of decode steps with one arrival alone less that of decode steps with none
 * (the server handles it whenever it comes, mostly while a step runs); `step` is the median gap of
 * the decode steps with no event less the engine's own work the model predicted for each (its
 * predicted interval less its predicted latency: cost.engineStep, measured on a bare engine): what
 * serving adds to every step (each token to its response, the metrics); `busy` is the median
 * over those steps of the engine's busy share of the second before each (BusyWindow over the
 * records). Each >= 0; 0 with fewer than MIN_SAMPLES steps.
 */
export function servingCosts(steps: readonly StepRecord[], records: readonly RequestRecord[], prompt: number): ServingProfile {
  const arrivals = records.map((r) => r.arrival).sort((a, b) => a - b);
  const finishedAt = new Map<number, number>();
  for (const r of records) finishedAt.set(r.finishedAt, (finishedAt.get(r.finishedAt) ?? 0) + 1);
  let next = 0; // the first arrival not yet counted (steps come in order, their intervals one after another)
  const gaps: Record<'none' | 'admitted' | 'finished', number[]> = { none: [], admitted: [], finished: [] };
  const excess: Record<'none' | 'arrival', number[]> = { none: [], arrival: [] };
  const served: number[] = []; // no-event decode steps: the gap beyond the engine's predicted work
  const shares: number[] = []; // and the engine's busy share before each
  const window = new BusyWindow();
  for (let i = 0; i + 1 < steps.length; i++) {
    const a = steps[i]!, b = steps[i + 1]!;
    const share = window.share(a.start);
    window.add(a.start, a.seconds);
    const end = a.start + a.seconds;
    const gap = b.start - end;
    while (next < arrivals.length && arrivals[next]! < a.start) next++;
    let arrived = 0;
    while (next < arrivals.length && arrivals[next]! < b.start) { next++; arrived++; }
    if (gap > IDLE) continue;
    const admitted = Math.round(a.prefillTokens / prompt);
    const finished = finishedAt.get(end) ?? 0;
    const decodeOnly = a.prefillTokens === 0 && a.migrations === 0;
    if (finished === 0 && arrived === 0) {
      if (admitted === 0 && decodeOnly) {
        gaps.none.push(gap);
        excess.none.push(b.start - a.start - a.predictedSeconds);
        if (a.predictedInterval !== undefined) { served.push(gap - (a.predictedInterval - a.predictedSeconds)); shares.push(share); }
      }
      if (admitted === 1) gaps.admitted.push(gap);
    } else if (admitted === 0 && arrived === 0 && finished === 1) {
      gaps.finished.push(gap);
    } else if (admitted === 0 && finished === 0 && arrived === 1 && decodeOnly) {
      excess.arrival.push(b.start - a.start - a.predictedSeconds);
    }
  }
  const over = (xs: number[], base: number[]): number => (xs.length >= MIN_SAMPLES && base.length >= MIN_SAMPLES ? Math.max(0, median(xs) - median(base)) : 0);
  return {
    admitted: over(gaps.admitted, gaps.none), finished: over(gaps.finished, gaps.none), arrival: over(excess.arrival, excess.none),
    step: served.length >= MIN_SAMPLES ? Math.max(0, median(served)) : 0,
    busy: served.length >= MIN_SAMPLES ? median(shares) : 0,
    samples: { none: gaps.none.length, admitted: gaps.admitted.length, finished: gaps.finished.length, arrival: excess.arrival.length },
  };
}
