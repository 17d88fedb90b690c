// Owns: a cluster whose workers all live in this process (WorkerCores called directly, the
// all-reduce as a rendezvous): the distributed step logic without processes or sockets, for
// tests and for comparing against the real worker processes. Must not: be used to claim
// anything about transport costs.

import type { LoadedModel } from '../model/weights.js';
import type { PrimaryStep, PrimaryStepReply, WorkerAssignment, WorkerHandle, WorkerStats } from './cluster-types.js';
import type { HeadKvExport } from './head-kv.js';
import type { MatmulKernels } from './kernels/types.js';
import type { AllReduce, RemoteAttention } from './primary.js';
import { WorkerCore } from './worker-core.js';

/** Sums buffers across `size` ranks of this process, in rank order (same bits on every rank). */
export class RendezvousAllReduce {
  private readonly open = new Map<string, { parts: (Float32Array | undefined)[]; waiters: (() => void)[]; sum?: Float32Array }>();

  constructor(readonly size: number) {}

  rank(r: number): AllReduce {
    return {
      sum: async (buf, length, tag) => {
        let e = this.open.get(tag);
        if (e === undefined) { e = { parts: new Array(this.size).fill(undefined), waiters: [] }; this.open.set(tag, e); }
        e.parts[r] = buf.slice(0, length);
        if (e.parts.every((p) => p !== undefined)) {
          const sum = new Float32Array(length);
          for (const p of e.parts) for (let i = 0; i < length; i++) sum[i]! += p![i]!;
          e.sum = sum;
          this.open.delete(tag);
          for (const w of e.waiters) w();
        } else {
          await new Promise<void>((resolve) => e.waiters.push(resolve));
        }
        buf.set(e.sum!);
      },
    };
  }
}

class CoreHandle implements WorkerHandle {
  constructor(readonly core: WorkerCore) {}
  get assignment(): WorkerAssignment { return this.core.a; }
  alive(): boolean { return true; }
  step(s: PrimaryStep): Promise<PrimaryStepReply> { return this.core.step(s); }
  free(seqs: number[]): Promise<void> { this.core.free(seqs); return Promise.resolve(); }
  exportHead(seq: number, head: number): Promise<HeadKvExport> { return Promise.resolve(this.core.exportHead(seq, head)); }
  importHead(seq: number, head: number, x: HeadKvExport): Promise<void> { this.core.importHead(seq, head, x); return Promise.resolve(); }
  dropHead(seq: number, head: number): Promise<void> { this.core.dropHead(seq, head); return Promise.resolve(); }
  stats(): Promise<WorkerStats> { return Promise.resolve(this.core.stats()); }
}

/** Builds every worker of `assignments` in this process; returns their handles in the same order. */
export function inProcessCluster(model: LoadedModel, assignments: readonly WorkerAssignment[], kernels: MatmulKernels): WorkerHandle[] {
  const attention = new Map<string, WorkerCore>();
  for (const a of assignments) if (a.primary === undefined) attention.set(a.deviceId, new WorkerCore(a, undefined, kernels));
  const remotes = new Map<string, RemoteAttention>();
  for (const [id, core] of attention) remotes.set(id, { attend: (l, items, q, k, v) => core.attend(l, items, q, k, v) });
  const groups = new Map<number, RendezvousAllReduce>();
  return assignments.map((a) => {
    if (a.primary === undefined) return new CoreHandle(attention.get(a.deviceId)!);
    const p = a.primary;
    let g = groups.get(p.stage);
    if (g === undefined) { g = new RendezvousAllReduce(p.size); groups.set(p.stage, g); }
    const links = { remotes, ...(p.size > 1 ? { allReduce: g.rank(p.rank) } : {}) };
    return new CoreHandle(new WorkerCore(a, model, kernels, links));
  });
}
