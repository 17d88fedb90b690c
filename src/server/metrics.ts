// Owns: the server's Prometheus metrics: latency histograms and token / request counters fed
// from the engine's listener and step records, gauges read from the engine at scrape time, and
// the text exposition format. Must not: touch HTTP or change the engine.

import type { FinishReason, RequestRecord, StepRecord } from '../engine/types.js';

/** What a scrape reads from the engine now. */
export interface EngineSnapshot {
  counts: { running: number; waiting: number };
  devices: readonly { id: string; alive: boolean; heads: number; usedBlocks: number; freeBlocks: number }[];
}

/** Cumulative histogram with fixed upper bounds (seconds). */
class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++;
  }

  lines(name: string): string[] {
    return [
      ...this.bounds.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    ];
  }
}

const LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const TOKEN_BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const REASONS: readonly FinishReason[] = ['stop', 'length', 'abort', 'error'];

export class ServerMetrics {
  private readonly ttft = new Histogram(LATENCY_BOUNDS);
  private readonly tpot = new Histogram(TOKEN_BOUNDS);
  private readonly e2e = new Histogram(LATENCY_BOUNDS);
  private readonly stepSeconds = new Histogram(TOKEN_BOUNDS);
  private promptTokens = 0;
  private generatedTokens = 0;
  private readonly finished: Record<FinishReason, number> = { stop: 0, length: 0, abort: 0, error: 0 };
  private migrations = 0;
  /** Engine time of the latest token of each running request. */
  private readonly lastTokenAt = new Map<string, number>();

  /** A token of request `id` came out at engine time `at`. */
  token(id: string, at: number): void {
    this.lastTokenAt.set(id, at);
  }

  /** An engine request finished (one per choice). */
  finish(r: RequestRecord): void {
    const last = this.lastTokenAt.get(r.id);
    this.lastTokenAt.delete(r.id);
    this.finished[r.finishReason]++;
    this.promptTokens += r.promptLength;
    this.generatedTokens += r.outputLength;
    if (r.finishReason === 'abort' || r.finishReason === 'error') return;
    this.e2e.observe(Math.max(0, r.finishedAt - r.arrival));
    if (r.firstTokenAt === undefined) return;
    this.ttft.observe(Math.max(0, r.firstTokenAt - r.arrival));
    // TPOT: time between the first and the last token over the gaps between them.
    if (last !== undefined && r.outputLength > 1) this.tpot.observe(Math.max(0, last - r.firstTokenAt) / (r.outputLength - 1));
  }

  /** One finished engine step. */
  step(s: StepRecord): void {
    this.migrations += s.migrations;
    this.stepSeconds.observe(s.seconds);
  }

  /** The Prometheus text exposition (format 0.0.4). */
  render(now: EngineSnapshot): string {
    const out: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, lines: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    const perDevice = (name: string, value: (d: EngineSnapshot['devices'][number]) => number): string[] =>
      now.devices.map((d) => `${name}{device="${label(d.id)}"} ${value(d)}`);
    family('hetis_ttft_seconds', 'histogram', 'Time from arrival to the first generated token.', this.ttft.lines('hetis_ttft_seconds'));
    family('hetis_tpot_seconds', 'histogram', 'Time per output token after the first.', this.tpot.lines('hetis_tpot_seconds'));
    family('hetis_request_seconds', 'histogram', 'Time from arrival to the end of a completed request.', this.e2e.lines('hetis_request_seconds'));
    family('hetis_step_seconds', 'histogram', 'Latency of one engine step.', this.stepSeconds.lines('hetis_step_seconds'));
    family('hetis_prompt_tokens_total', 'counter', 'Prompt tokens of finished engine requests (one per choice).', [`hetis_prompt_tokens_total ${this.promptTokens}`]);
    family('hetis_generation_tokens_total', 'counter', 'Tokens generated.', [`hetis_generation_tokens_total ${this.generatedTokens}`]);
    family('hetis_requests_total', 'counter', 'Engine requests (one per choice) finished, by finish reason.',
      REASONS.map((r) => `hetis_requests_total{finish_reason="${r}"} ${this.finished[r]}`));
    family('hetis_migrations_total', 'counter', 'KV heads migrated between devices.', [`hetis_migrations_total ${this.migrations}`]);
    family('hetis_requests_waiting', 'gauge', 'Requests queued, not yet running.', [`hetis_requests_waiting ${now.counts.waiting}`]);
    family('hetis_requests_running', 'gauge', 'Requests running.', [`hetis_requests_running ${now.counts.running}`]);
    family('hetis_kv_blocks_used', 'gauge', 'KV cache blocks in use per device.', perDevice('hetis_kv_blocks_used', (d) => d.usedBlocks));
    family('hetis_kv_blocks_free', 'gauge', 'KV cache blocks free per device.', perDevice('hetis_kv_blocks_free', (d) => d.freeBlocks));
    family('hetis_kv_heads', 'gauge', 'KV heads ((request, head) pairs) held per device.', perDevice('hetis_kv_heads', (d) => d.heads));
    family('hetis_device_alive', 'gauge', '1 while the device serves, 0 once failed.', perDevice('hetis_device_alive', (d) => (d.alive ? 1 : 0)));
    return out.join('\n') + '\n';
  }
}

/** A label value escaped per the exposition format. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
