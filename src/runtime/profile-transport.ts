// Owns: measuring message time between worker processes on this machine as the runtime sends
// messages: this process requests a worker process (worker-main, unassigned) over the hetis
// transport on 127.0.0.1 (frames, JSON part, raw tensor bytes, its handshake), with a pause between
// round trips as between a step's layers, and the one-way time (round trip less half the smallest
// one) is fitted to latency + bytes / bandwidth. Must not: leave the worker running.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { LinkProfile } from '../cost/profile-types.js';
import { HetisError } from '../util/errors.js';
import { median, nonNegativeLeastSquares } from '../util/fit.js';
import { connect } from './transport/index.js';
import { blockFor } from '../util/block.js';
import { workerCommand } from './worker-command.js';

export interface TransportOptions {
  /** Message payload sizes, bytes, ascending. */
  sizes: number[];
  /** Round trips per size after `warmup` unrecorded ones. */
  repeats: number;
  warmup: number;
  /** Gives up after this long, seconds (default 120). */
  timeoutSeconds?: number;
  /** Called with each child's pid when it starts (tests check the children are gone after). */
  onSpawn?: (pid: number) => void;
  /** Called after each size is measured. */
  onSize?: (bytes: number) => void;
  /** Idle pause before each round trip, ms (default DEFAULT_PAUSE_MS). */
  pauseMs?: number;
}

/** Default sizes: 64 B .. 4 MiB in factors of 4. */
export const TRANSPORT_SIZES: readonly number[] = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];


/**
 * Measures message time to a worker process over loopback TCP through the hetis transport: a
 * request carrying `bytes` of tensor data and the worker's small reply ('info'). One-way seconds
 * per size are the median round trip less half the median round trip of the smallest size;
 * latency and bandwidth come from a fit weighted by relative error. The worker is killed (by pid)
 * and reaped before this returns or throws.
 */
export async function measureTransport(o: TransportOptions): Promise<LinkProfile> {
  const children: ChildProcess[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HetisError('internal', 'transport measurement timed out')), (o.timeoutSeconds ?? 120) * 1000);
  });
  const token = randomBytes(16).toString('hex');
  try {
    const run = async (): Promise<{ bytes: number; rtts: number[] }[]> => {
      const child = spawn(process.execPath, [...workerCommand(), JSON.stringify({ listen: '127.0.0.1:0', token, threads: 1, kernels: 'reference' })], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(child);
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
      const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
      if (first.done === true) throw new HetisError('internal', `transport worker exited before listening${stderr ? `: ${stderr}` : ''}`);
      const { listening } = JSON.parse(first.value) as { listening: string };
      const peer = await connect(listening, { token });
      try {
        // Both processes' JIT and the connection warm up before anything is timed.
        const small = new Uint8Array(o.sizes[0] ?? 64);
        for (let r = 0; r < JIT_WARMUP; r++) await peer.request('info', null, [small]);
        const results: { bytes: number; rtts: number[] }[] = [];
        for (const size of o.sizes) {
          const payload = new Uint8Array(size).fill(7);
          const rtts: number[] = [];
          for (let r = 0; r < o.warmup + o.repeats; r++) {
            blockFor(o.pauseMs ?? DEFAULT_PAUSE_MS);
            const t0 = performance.now();
            await peer.request('info', null, [payload]);
            if (r >= o.warmup) rtts.push((performance.now() - t0) / 1000);
          }
          results.push({ bytes: size, rtts });
          o.onSize?.(size);
        }
        return results;
      } finally {
        await peer.close();
      }
    };
    const results = await Promise.race([run(), timeout]);
    const bytes = results.map((r) => r.bytes);
    const base = median(results[0]!.rtts) / 2; // the other direction: a small message
    const seconds = results.map((r) => Math.max(median(r.rtts) - base, 1e-9));
    const [latency, perByte] = nonNegativeLeastSquares(bytes.map((b) => [1, b]), seconds, seconds.map((s) => 1 / (s * s)));
    return { kind: 'loopback', bytes, seconds, latency: latency!, bandwidth: perByte! > 0 ? 1 / perByte! : Number.MAX_VALUE };
  } finally {
    clearTimeout(timer);
    await Promise.all(children.map(killAndReap));
  }
}

/** Untimed round trips before the first size. */
const JIT_WARMUP = 50;

/** Pause before each round trip, ms: about one layer's dense work at small batches, when a worker waits between messages. */
export const DEFAULT_PAUSE_MS = 0.2;

/** SIGKILL by pid unless already exited, then wait for the exit so the pid is reaped. */
function killAndReap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      resolve(); // already gone
    }
  });
}
