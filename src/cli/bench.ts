// Owns: the `hetis bench` command: flags to sweep options, progress on stderr, a table or one
// JSON line per rate on stdout. Must not: send requests or time them (server/loadgen.ts does).

import { promptLines, sweep, type LoadProgress, type LoadSummary, type PromptSource } from '../server/loadgen.js';
import { HetisError } from '../util/errors.js';
import { readWholeFile } from '../util/files.js';

export interface BenchFlags {
  url: string;
  model?: string;
  apiKey?: string;
  rates: string;
  duration?: number;
  count?: number;
  maxTokens: number;
  promptTokens: number;
  promptFile?: string;
  prompts: 'generated' | 'builtin';
  temperature: number;
  seed: number;
  timeout: number;
  warmup: boolean;
  json?: boolean;
}

const say = (line: string): void => { process.stderr.write(`hetis bench: ${line}\n`); };

/** '0.5,1,2' -> [0.5, 1, 2]; anything else is one clear error. */
export function parseRates(list: string): number[] {
  const parts = list.split(',').map((s) => s.trim());
  return parts.map((s) => {
    const r = Number(s);
    if (s === '' || !(r > 0) || !Number.isFinite(r)) throw new HetisError('bad_input', `--rates must be positive numbers (requests per second) separated by commas, got '${list}'`);
    return r;
  });
}

function promptSource(f: BenchFlags): PromptSource {
  if (f.promptFile === undefined) return f.prompts === 'builtin' ? { kind: 'builtin' } : { kind: 'generated', tokens: f.promptTokens };
  const prompts = promptLines(readWholeFile(f.promptFile, 'a prompt file').toString('utf8'));
  if (prompts.length === 0) throw new HetisError('bad_input', `${f.promptFile}: no prompts (expected one per line)`);
  return { kind: 'list', prompts };
}

/** The JSON line of one rate (NaN percentiles, from no completed request, print as null). */
export function benchLine(s: LoadSummary): Record<string, unknown> {
  return {
    rate: s.rate, model: s.model, throughput_req_s: s.throughputReqS, throughput_tok_s: s.throughputTokS,
    ttft_p50_s: s.ttftS.p50, ttft_p95_s: s.ttftS.p95, ttft_p99_s: s.ttftS.p99,
    tpot_p50_s: s.tpotS.p50, tpot_p95_s: s.tpotS.p95, e2e_p50_s: s.e2eS.p50, e2e_p95_s: s.e2eS.p95,
    sent: s.sent, completed: s.completed, failed: s.failed, output_tokens: s.outputTokens, duration_s: s.durationS,
    failures: Object.fromEntries(s.failures.map((x) => [x.reason, x.count])),
  };
}

const ms = (s: number): string => (Number.isNaN(s) ? '-' : (s * 1000).toFixed(s < 0.1 ? 1 : 0));
const fixed = (x: number, d: number): string => (Number.isNaN(x) ? '-' : x.toFixed(d));

function table(rows: readonly LoadSummary[]): string {
  const head = ['rate/s', 'req/s', 'tok/s', 'TTFT p50 ms', 'p95', 'p99', 'TPOT p50 ms', 'p95', 'E2E p50 s', 'p95', 'done', 'failed'];
  const body = rows.map((s) => [
    String(s.rate), fixed(s.throughputReqS, 2), fixed(s.throughputTokS, 1), ms(s.ttftS.p50), ms(s.ttftS.p95), ms(s.ttftS.p99),
    ms(s.tpotS.p50), ms(s.tpotS.p95), fixed(s.e2eS.p50, 2), fixed(s.e2eS.p95, 2), String(s.completed), String(s.failed),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const fmt = (r: readonly string[]): string => r.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const lines = [fmt(head), ...body.map(fmt)];
  for (const s of rows) for (const f of s.failures) lines.push(`rate ${s.rate}: ${f.count} failed: ${f.reason}: ${f.example}`);
  return `${lines.join('\n')}\n`;
}

function progressLine(p: LoadProgress): void {
  say(`rate ${p.rate}/s: ${p.elapsedS.toFixed(0)} s, sent ${p.sent}/${p.scheduled}, completed ${p.completed}, failed ${p.failed}, in flight ${p.sent - p.completed - p.failed}`);
}

export async function benchCommand(f: BenchFlags): Promise<void> {
  const rates = parseRates(f.rates);
  const prompts = promptSource(f);
  const stop = new AbortController();
  const onSignal = (): void => { say('interrupted: stopping (partial results follow)'); stop.abort(); };
  process.once('SIGINT', onSignal);
  let rows: LoadSummary[];
  try {
    rows = await sweep(rates, {
      url: f.url, prompts, maxTokens: f.maxTokens, temperature: f.temperature, seed: f.seed, timeoutS: f.timeout, warmup: f.warmup,
      ...(f.model !== undefined ? { model: f.model } : {}), ...(f.apiKey !== undefined ? { apiKey: f.apiKey } : {}),
      ...(f.count !== undefined ? { count: f.count } : {}),
      ...(f.duration !== undefined || f.count === undefined ? { durationS: f.duration ?? 20 } : {}),
      signal: stop.signal, onProgress: progressLine,
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
  if (f.json === true) for (const s of rows) process.stdout.write(`${JSON.stringify(benchLine(s))}\n`);
  else process.stdout.write(table(rows));
}
