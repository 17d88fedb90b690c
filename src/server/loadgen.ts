// Owns: the serving benchmark's load generator: streaming completions sent to a running
// OpenAI-compatible server at seeded Poisson arrival times (open loop), timed per request (TTFT,
// TPOT, end-to-end), and summarised per offered rate; a sweep over rates. Must not: print, read
// files or exit (the CLI does), or leave a socket open once it returns.

import { performance } from 'node:perf_hooks';
import { arrivalTimes } from '../sim/arrivals.js';
import { percentiles, type Percentiles } from '../sim/metrics.js';
import { HetisError } from '../util/errors.js';
import { createRng } from '../util/rng.js';
import { createSseParser } from './sse-parse.js';
import { makePrompts, type PromptSource } from './load-prompts.js';
import { call, closeClient, errorOf, networkReason, openClient, readText, resolveModel, type Client } from './load-client.js';

export { BUILTIN_PROMPTS, generatedPrompt, makePrompts, promptLines, type PromptSource } from './load-prompts.js';
export { createSseParser } from './sse-parse.js';
export { apiBase } from './load-client.js';

export interface LoadOptions {
  /** The server's base URL, with or without the trailing `/v1`. */
  url: string;
  /** Model to request (default: the first id GET /v1/models lists). */
  model?: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Offered rate, requests per second (Poisson arrivals). */
  rate: number;
  /** Arrivals lie in [0, durationS) seconds. At least one of durationS and count. */
  durationS?: number;
  /** Send at most this many requests. */
  count?: number;
  prompts: PromptSource;
  maxTokens: number;
  /** Default 0 (greedy). */
  temperature?: number;
  /** Seeds the arrival times and the generated prompts (default 0). */
  seed?: number;
  /** A request not finished this long after it was sent is cut and counted failed (default 120 s). */
  timeoutS?: number;
  /** Aborts the run: nothing more is sent, requests in flight are cut (counted failed, 'cancelled'). */
  signal?: AbortSignal;
  /** Called about once a second while the run lasts. */
  onProgress?: (p: LoadProgress) => void;
}

export interface LoadProgress {
  rate: number;
  elapsedS: number;
  /** Requests to send in all (the arrivals scheduled). */
  scheduled: number;
  sent: number;
  completed: number;
  failed: number;
}

/** One request as the client saw it. Times in seconds from the start of the run. */
export interface RequestResult {
  index: number;
  /** When its arrival was due, and when it was sent (later only if the client lagged). */
  scheduledS: number;
  sentS: number;
  ok: boolean;
  /** Sent to the first non-empty text chunk. */
  ttftS?: number;
  /** (last text chunk - first text chunk) / (completion tokens - 1), for 2+ tokens. */
  tpotS?: number;
  /** Sent to the end of the response. */
  e2eS: number;
  /** From the usage chunk; without one, the number of text chunks. */
  completionTokens: number;
  promptTokens?: number;
  finishReason?: string;
  /** Failed requests: a reason shared by like failures ('HTTP 404 model_not_found', 'network ECONNRESET', 'timeout'), and the server's message. */
  error?: string;
  message?: string;
}

export interface FailureCount {
  reason: string;
  count: number;
  /** The message of the first such failure. */
  example: string;
}

export interface LoadSummary {
  model: string;
  /** Offered rate, requests per second. */
  rate: number;
  sent: number;
  completed: number;
  failed: number;
  failures: FailureCount[];
  /** Seconds from the start of the run to the end of its last request. */
  durationS: number;
  /** Completed requests per second of durationS. */
  throughputReqS: number;
  /** Output tokens of completed requests per second of durationS. */
  throughputTokS: number;
  outputTokens: number;
  /** Over completed requests, seconds (NaN when there are none). */
  ttftS: Percentiles;
  tpotS: Percentiles;
  e2eS: Percentiles;
  requests: RequestResult[];
}

export interface SweepOptions extends Omit<LoadOptions, 'rate'> {
  /** Send one request, unmeasured, before the first rate; its failure aborts the sweep (default true). */
  warmup?: boolean;
}

const DEFAULT_TIMEOUT_S = 120;
interface RequestSpec {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  timeoutS: number;
}

/** What one request's stream has shown so far (times from performance.now(), ms). */
interface StreamState {
  firstTextAt?: number;
  lastTextAt?: number;
  textChunks: number;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  finishReason?: string;
  done: boolean;
  error?: { reason: string; message: string };
}

/** Applies one SSE event's data to the state: text timing, finish reason, usage, an error event. */
function onEvent(s: StreamState, data: string, now: number): void {
  if (s.done || s.error) return;
  if (data === '[DONE]') { s.done = true; return; }
  let chunk: { error?: { message?: unknown; code?: unknown }; usage?: StreamState['usage'] | null; choices?: { text?: unknown; delta?: { content?: unknown }; finish_reason?: unknown }[] };
  try {
    chunk = JSON.parse(data) as typeof chunk;
  } catch {
    s.error = { reason: 'bad stream data', message: data.slice(0, 200) };
    return;
  }
  if (chunk.error) {
    s.error = { reason: `stream error${typeof chunk.error.code === 'string' ? ` ${chunk.error.code}` : ''}`, message: String(chunk.error.message ?? '') };
    return;
  }
  if (chunk.usage) s.usage = chunk.usage;
  for (const c of chunk.choices ?? []) {
    const text = typeof c.text === 'string' ? c.text : typeof c.delta?.content === 'string' ? c.delta.content : '';
    if (text !== '') {
      s.firstTextAt ??= now;
      s.lastTextAt = now;
      s.textChunks++;
    }
    if (typeof c.finish_reason === 'string') s.finishReason = c.finish_reason;
  }
}

/** One streamed completion, timed. Never throws: every failure is a result with `ok: false`. */
async function sendOne(c: Client, spec: RequestSpec, index: number, t0: number, scheduledS: number, stop: AbortSignal | undefined): Promise<RequestResult> {
  const sentAt = performance.now();
  const base = { index, scheduledS, sentS: (sentAt - t0) / 1000 };
  const failed = (why: { reason: string; message: string }, tokens = 0): RequestResult =>
    ({ ...base, ok: false, e2eS: (performance.now() - sentAt) / 1000, completionTokens: tokens, error: why.reason, message: why.message });
  const ac = new AbortController();
  let cause: 'timeout' | 'cancelled' | undefined;
  const abort = (why: 'timeout' | 'cancelled'): void => { cause ??= why; ac.abort(); };
  const timer = setTimeout(() => abort('timeout'), spec.timeoutS * 1000);
  const onStop = (): void => abort('cancelled');
  stop?.addEventListener('abort', onStop, { once: true });
  const s: StreamState = { textChunks: 0, done: false };
  try {
    if (stop?.aborted) abort('cancelled');
    const res = await call(c, 'POST', 'completions', {
      model: spec.model, prompt: spec.prompt, max_tokens: spec.maxTokens, temperature: spec.temperature,
      stream: true, stream_options: { include_usage: true },
    }, ac.signal);
    if (res.statusCode !== 200) return failed(errorOf(res.statusCode ?? 0, await readText(res)));
    res.setEncoding('utf8');
    const sse = createSseParser((data) => onEvent(s, data, performance.now()));
    for await (const piece of res) sse.push(piece as string);
    sse.end();
    if (s.error) return failed(s.error, s.usage?.completion_tokens ?? s.textChunks);
    if (!s.done) return failed({ reason: 'stream ended early', message: 'the stream ended before data: [DONE]' }, s.textChunks);
    const end = performance.now();
    const tokens = s.usage?.completion_tokens ?? s.textChunks;
    const r: RequestResult = { ...base, ok: true, e2eS: (end - sentAt) / 1000, completionTokens: tokens };
    if (s.firstTextAt !== undefined) r.ttftS = (s.firstTextAt - sentAt) / 1000;
    if (s.firstTextAt !== undefined && s.lastTextAt !== undefined && tokens >= 2) r.tpotS = (s.lastTextAt - s.firstTextAt) / 1000 / (tokens - 1);
    if (s.usage?.prompt_tokens !== undefined) r.promptTokens = s.usage.prompt_tokens;
    if (s.finishReason !== undefined) r.finishReason = s.finishReason;
    return r;
  } catch (err) {
    if (cause === 'timeout') return failed({ reason: 'timeout', message: `no complete answer within ${spec.timeoutS} s` }, s.textChunks);
    if (cause === 'cancelled') return failed({ reason: 'cancelled', message: 'the run was stopped' }, s.textChunks);
    return failed(networkReason(err), s.textChunks);
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}

/** Resolves at `atMs` (performance.now() time), or at once when `signal` aborts. */
function sleepUntil(atMs: number, signal: AbortSignal | undefined): Promise<void> {
  const ms = atMs - performance.now();
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Failures grouped by reason, most frequent first. */
export function countFailures(results: readonly RequestResult[]): FailureCount[] {
  const by = new Map<string, FailureCount>();
  for (const r of results) {
    if (r.ok) continue;
    const reason = r.error ?? 'unknown';
    const f = by.get(reason) ?? { reason, count: 0, example: r.message ?? '' };
    f.count++;
    by.set(reason, f);
  }
  return [...by.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** The summary of one run's request results. */
export function summarize(model: string, rate: number, results: readonly RequestResult[]): LoadSummary {
  const ok = results.filter((r) => r.ok);
  const durationS = results.reduce((m, r) => Math.max(m, r.sentS + r.e2eS), 0);
  const outputTokens = ok.reduce((n, r) => n + r.completionTokens, 0);
  const defined = (xs: (number | undefined)[]): number[] => xs.filter((x): x is number => x !== undefined);
  return {
    model, rate, sent: results.length, completed: ok.length, failed: results.length - ok.length, failures: countFailures(results),
    durationS,
    throughputReqS: durationS > 0 ? ok.length / durationS : 0,
    throughputTokS: durationS > 0 ? outputTokens / durationS : 0,
    outputTokens,
    ttftS: percentiles(defined(ok.map((r) => r.ttftS))),
    tpotS: percentiles(defined(ok.map((r) => r.tpotS))),
    e2eS: percentiles(ok.map((r) => r.e2eS)),
    requests: [...results],
  };
}

function checkOptions(o: Omit<LoadOptions, 'rate'>): void {
  const bad = (m: string): never => { throw new HetisError('bad_input', m); };
  if (o.durationS === undefined && o.count === undefined) bad('a load needs a duration or a request count');
  if (o.durationS !== undefined && !(o.durationS > 0 && Number.isFinite(o.durationS))) bad(`--duration must be a positive number of seconds, got ${o.durationS}`);
  if (o.count !== undefined && !(Number.isInteger(o.count) && o.count >= 1)) bad(`--count must be an integer >= 1, got ${o.count}`);
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 1)) bad(`--max-tokens must be an integer >= 1, got ${o.maxTokens}`);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad(`--temperature must be a number >= 0, got ${o.temperature}`);
  if (o.timeoutS !== undefined && !(o.timeoutS > 0 && Number.isFinite(o.timeoutS))) bad(`--timeout must be a positive number of seconds, got ${o.timeoutS}`);
  if (o.prompts.kind === 'generated' && !(o.prompts.tokens >= 1 && Number.isFinite(o.prompts.tokens))) bad(`--prompt-tokens must be >= 1, got ${o.prompts.tokens}`);
}

function checkRate(rate: number): void {
  if (!(rate > 0 && Number.isFinite(rate))) throw new HetisError('bad_input', `a rate must be a positive number of requests per second, got ${rate}`);
}

/** One rate on an open client: sends every arrival at its time, waits for all to end, summarises. */
async function runRate(c: Client, model: string, opts: LoadOptions): Promise<LoadSummary> {
  const seed = opts.seed ?? 0;
  const arrivals = arrivalTimes(createRng(seed * 2), {
    process: 'poisson', rate: opts.rate,
    ...(opts.count !== undefined ? { count: opts.count } : {}), ...(opts.durationS !== undefined ? { duration: opts.durationS } : {}),
  });
  const prompts = makePrompts(opts.prompts, arrivals.length, seed);
  const spec = { model, maxTokens: opts.maxTokens, temperature: opts.temperature ?? 0, timeoutS: opts.timeoutS ?? DEFAULT_TIMEOUT_S };
  const results: RequestResult[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const progress = { rate: opts.rate, elapsedS: 0, scheduled: arrivals.length, sent: 0, completed: 0, failed: 0 };
  const ticker = opts.onProgress === undefined ? undefined : setInterval(() => {
    progress.elapsedS = (performance.now() - t0) / 1000;
    opts.onProgress?.({ ...progress });
  }, 1000);
  try {
    for (const [i, at] of arrivals.entries()) {
      await sleepUntil(t0 + at * 1000, opts.signal);
      if (opts.signal?.aborted) break;
      progress.sent++;
      pending.push(sendOne(c, { ...spec, prompt: prompts[i]! }, i, t0, at, opts.signal).then((r) => {
        results.push(r);
        if (r.ok) progress.completed++; else progress.failed++;
      }));
    }
    await Promise.all(pending);
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
  }
  results.sort((a, b) => a.index - b.index);
  return summarize(model, opts.rate, results);
}

/** Runs `fn` on a client for `opts`, the model resolved; the client's sockets are closed after, whatever happens. */
async function withClient<T>(opts: Omit<LoadOptions, 'rate'>, fn: (c: Client, model: string) => Promise<T>): Promise<T> {
  checkOptions(opts);
  const c = openClient(opts.url, opts.apiKey);
  try {
    const model = await resolveModel(c, opts.url, opts.model, opts.timeoutS ?? DEFAULT_TIMEOUT_S);
    return await fn(c, model);
  } finally {
    closeClient(c);
  }
}

/** One load run at `opts.rate` against the server at `opts.url`. Throws (HetisError) only when no usable server answers. */
export async function runLoad(opts: LoadOptions): Promise<LoadSummary> {
  checkRate(opts.rate);
  return withClient(opts, (c, model) => runRate(c, model, opts));
}

/** Runs each rate in turn (each waits for the previous one's requests to end); one summary per rate. */
export async function sweep(rates: readonly number[], opts: SweepOptions): Promise<LoadSummary[]> {
  if (rates.length === 0) throw new HetisError('bad_input', 'a sweep needs at least one rate');
  rates.forEach(checkRate);
  return withClient(opts, async (c, model) => {
    if (opts.warmup !== false) {
      const prompt = makePrompts(opts.prompts, 1, opts.seed ?? 0)[0]!;
      const spec = { model, prompt, maxTokens: opts.maxTokens, temperature: opts.temperature ?? 0, timeoutS: opts.timeoutS ?? DEFAULT_TIMEOUT_S };
      const r = await sendOne(c, spec, -1, performance.now(), 0, opts.signal);
      if (!r.ok && r.error !== 'cancelled') throw new HetisError('bad_input', `the warm-up request failed: ${r.error}: ${r.message}`);
    }
    const out: LoadSummary[] = [];
    for (const rate of rates) {
      if (opts.signal?.aborted) break;
      out.push(await runRate(c, model, { ...opts, rate }));
    }
    return out;
  });
}
