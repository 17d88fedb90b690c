// Owns: what serving does when a step fails: find out which workers are gone, fail their
// devices in the engine (their requests are recomputed from their tokens on the survivors),
// restart a dead attention worker when it can and let it rejoin, and give up cleanly when a
// primary is gone (every request ends with an error; the cluster is unhealthy). Must not: know
// about HTTP.

import type { Engine } from '../engine/engine.js';
import type { WorkerHandle } from './cluster-types.js';
import { DeviceFailure, type ClusterExecutor } from './cluster-executor.js';

export interface SupervisorOptions {
  /** Starts a new worker for a dead attention device (absent: the device stays out). */
  restart?: (deviceId: string) => Promise<WorkerHandle & { address: string }>;
  /** Called after a restarted device rejoined (tests, logs). */
  onRejoin?: (deviceId: string) => void;
  log?: (line: string) => void;
}

export class ClusterSupervisor {
  /** False once a primary is gone: nothing can be served. */
  healthy = true;
  /** Devices being restarted. */
  private readonly restarting = new Set<string>();

  constructor(private readonly executor: ClusterExecutor, private readonly o: SupervisorOptions = {}) {}

  /** The engine loop's step-error hook: returns whether to keep serving. */
  onStepError(e: unknown, engine: Engine): boolean {
    const log = this.o.log ?? (() => {});
    if (!(e instanceof DeviceFailure)) {
      log(`a step failed (${e instanceof Error ? e.message : String(e)}): the requests in flight fail`);
      engine.abortAll('error');
      return true;
    }
    if (e.primary) {
      log(`primary worker gone (${e.devices.join(', ')}): every request fails; the cluster is unhealthy`);
      this.healthy = false;
      engine.abortAll('error');
      return false;
    }
    // KV that was being moved when the step broke is suspect: recompute those requests.
    engine.recompute(this.executor.interrupted);
    for (const d of e.devices) {
      if (this.restarting.has(d)) continue;
      log(`attention device ${d} is gone: its heads move to the others (their requests recompute)`);
      engine.failDevice(d);
      if (this.o.restart !== undefined) void this.rejoin(d, engine);
    }
    return true;
  }

  private async rejoin(d: string, engine: Engine): Promise<void> {
    const log = this.o.log ?? (() => {});
    this.restarting.add(d);
    try {
      const w = await this.o.restart!(d);
      await Promise.all(this.executor.handles.filter((h) => h.assignment.primary !== undefined && h.alive()).map((h) => h.connectAttention!(d, w.address)));
      this.executor.replace(w);
      engine.reviveDevice(d);
      log(`attention device ${d} rejoined (${w.address})`);
      this.o.onRejoin?.(d);
    } catch (err) {
      log(`could not restart ${d}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.restarting.delete(d);
    }
  }
}
