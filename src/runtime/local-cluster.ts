// Owns: starting a cluster of worker processes on this machine (one per primary rank and per
// attention device), connecting and assigning them, and stopping them by process id. Must not:
// serve requests or decide the layout.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';
import { layoutAssignments, type ClusterLayout } from './cluster-layout.js';
import type { KernelPreference } from './kernel-select.js';
import { connectWorkers, type RemoteWorker } from './remote-worker.js';
import { workerCommand } from './worker-command.js';

export const LOCAL_HEARTBEAT_TIMEOUT_MS = 15_000;

export interface LocalClusterOptions {
  spec: ModelSpec;
  modelPath: string;
  tokenizerPath?: string;
  layout: ClusterLayout;
  /** Matrix-kernel threads per worker (default 1). */
  threads?: number;
  kernels?: KernelPreference;
  /** Cluster token (default: a random one; workers here accept only this process). */
  token?: string;
  /**
   * Heartbeat timeout, ms (default 15 s: a killed worker is seen at once by its closed socket;
   * the heartbeat only catches hung ones, and processes on a busy 2-core machine can stall for
   * seconds).
   */
  timeoutMs?: number;
  /** Seconds to wait for a worker to start (default 30). */
  startTimeout?: number;
  /** Worker log lines (their stderr). */
  log?: (line: string) => void;
}

export interface LocalCluster {
  workers: RemoteWorker[];
  /** Worker processes, in the order of `workers`. */
  processes: ChildProcess[];
  token: string;
  /**
   * Starts a new process for attention device `deviceId` (its old one died), assigns it the same
   * role, and returns its handle (in `workers` and `processes` in place of the old one).
   */
  restart(deviceId: string): Promise<RemoteWorker>;
  /** Shuts every worker down and waits for the processes to exit (kills them by pid if need be). */
  close(): Promise<void>;
}

function startOne(args: object, o: LocalClusterOptions): Promise<{ proc: ChildProcess; address: string }> {
  const proc = spawn(process.execPath, [...workerCommand(), JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const log = o.log ?? (() => {});
  createInterface({ input: proc.stderr! }).on('line', (l) => log(l));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new HetisError('internal', `worker (pid ${proc.pid}) did not start within ${o.startTimeout ?? 30} s`)); }, (o.startTimeout ?? 30) * 1000);
    const lines = createInterface({ input: proc.stdout! });
    lines.once('line', (l) => {
      clearTimeout(timer);
      try {
        const { listening } = JSON.parse(l) as { listening: string };
        resolve({ proc, address: listening });
      } catch {
        proc.kill('SIGKILL');
        reject(new HetisError('internal', `worker (pid ${proc.pid}) printed '${l}' instead of its address`));
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new HetisError('internal', `worker (pid ${proc.pid}) exited with code ${code} while starting`)); });
  });
}

/** Waits for a process to exit, killing it after `ms`. */
function reap(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { if (proc.pid !== undefined) { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } } }, ms);
    proc.once('exit', () => { clearTimeout(timer); resolve(); });
  });
}

/** Starts, connects and assigns the workers of `o.layout`. */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const token = o.token ?? randomBytes(16).toString('hex');
  const count = o.layout.primary.tp * o.layout.primary.stages + o.layout.attention.length;
  const started: { proc: ChildProcess; address: string }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of started) s.proc.stdin?.end();
    await Promise.all(started.map((s) => reap(s.proc, 3000)));
  };
  try {
    const results = await Promise.allSettled(Array.from({ length: count }, () => startOne({
      listen: '127.0.0.1:0', token, threads: o.threads ?? 1, kernels: o.kernels ?? 'auto', timeoutMs: o.timeoutMs ?? LOCAL_HEARTBEAT_TIMEOUT_MS,
    }, o)));
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    const addresses = started.map((s) => s.address);
    const assignments = layoutAssignments(o.spec, o.layout, { path: o.modelPath, ...(o.tokenizerPath !== undefined ? { tokenizer: o.tokenizerPath } : {}) }, addresses);
    const copts = { token, timeoutMs: o.timeoutMs ?? LOCAL_HEARTBEAT_TIMEOUT_MS };
    const workers = await connectWorkers(addresses, assignments, copts);
    const processes = started.map((s) => s.proc);
    // A restart still starting when the cluster closes stops what it started itself (close has
    // already reaped every process it knew of); otherwise that worker outlives the cluster and,
    // its pipe to us open, keeps this process alive.
    let closing = false;
    const close = async (): Promise<void> => {
      closing = true;
      await Promise.all(workers.map((w) => w.shutdown()));
      await stopAll();
    };
    const closed = (): HetisError => new HetisError('unavailable', 'the local cluster closed while a worker was restarting');
    const restart = async (deviceId: string): Promise<RemoteWorker> => {
      const i = workers.findIndex((w) => w.assignment.deviceId === deviceId && w.assignment.primary === undefined);
      if (i < 0) throw new HetisError('bad_input', `no attention device '${deviceId}' to restart`);
      if (closing) throw closed();
      const s = await startOne({ listen: '127.0.0.1:0', token, threads: o.threads ?? 1, kernels: o.kernels ?? 'auto', timeoutMs: o.timeoutMs ?? LOCAL_HEARTBEAT_TIMEOUT_MS }, o);
      started.push(s);
      const stopIt = async (): Promise<never> => {
        s.proc.stdin?.end();
        await reap(s.proc, 3000);
        throw closed();
      };
      if (closing) return stopIt();
      const [w] = await connectWorkers([s.address], [workers[i]!.assignment], copts);
      if (closing) {
        await w!.shutdown().catch(() => undefined); // its process may be gone already (close reaped it)
        return stopIt();
      }
      workers[i] = w!;
      processes[i] = s.proc;
      return w!;
    };
    return { workers, processes, token, restart, close };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
