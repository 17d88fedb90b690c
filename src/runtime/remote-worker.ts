// Owns: the engine side of one worker process: a WorkerHandle whose calls are transport
// requests (tensors as raw frames), and connecting + assigning a set of workers. Must not:
// start processes (local-cluster.ts does) or decide assignments (cluster-layout.ts does).

import { HetisError } from '../util/errors.js';
import type { PrimaryStep, PrimaryStepReply, WorkerAssignment, WorkerHandle, WorkerStats } from './cluster-types.js';
import type { HeadKvExport } from './head-kv.js';
import type { PrimaryTiming } from './primary.js';
import { connect, type Json, type Peer, type Tensor } from './transport/index.js';

export class RemoteWorker implements WorkerHandle {
  constructor(readonly peer: Peer, readonly assignment: WorkerAssignment, readonly address: string, readonly pid: number) {}

  alive(): boolean {
    return !this.peer.closed;
  }

  async connectAttention(deviceId: string, address: string): Promise<void> {
    await this.peer.request('peers.update', { deviceId, address });
  }

  async step(s: PrimaryStep): Promise<PrimaryStepReply> {
    const tensors: Tensor[] = [s.tokens, s.seqs, s.positions, s.logitRows, ...(s.x !== undefined ? [s.x] : [])];
    const r = await this.peer.request('step', { index: s.index, sequences: s.sequences as unknown as Json, sampling: s.sampling as unknown as Json }, tensors);
    const meta = r.meta as unknown as { timing: PrimaryTiming; tokens: boolean };
    const x = r.tensors[0] as Float32Array;
    return { x, ...(meta.tokens ? { tokens: r.tensors[1] as Int32Array } : {}), timing: meta.timing };
  }

  async free(seqs: number[]): Promise<void> {
    await this.peer.request('free', { seqs });
  }

  async exportHead(seq: number, head: number): Promise<HeadKvExport> {
    const r = await this.peer.request('kv.export', { seq, head });
    const meta = r.meta as unknown as { length: number; layers: [number, number] };
    return { length: meta.length, layers: meta.layers, data: r.tensors[0] as Float32Array };
  }

  async importHead(seq: number, head: number, x: HeadKvExport): Promise<void> {
    await this.peer.request('kv.import', { seq, head, length: x.length, layers: x.layers }, [x.data]);
  }

  async dropHead(seq: number, head: number): Promise<void> {
    await this.peer.request('kv.drop', { seq, head });
  }

  async stats(): Promise<WorkerStats> {
    return (await this.peer.request('stats', null)).meta as unknown as WorkerStats;
  }

  async shutdown(): Promise<void> {
    if (this.peer.closed) return;
    try { await this.peer.request('shutdown', null, [], { timeoutMs: 2000 }); } catch { /* already gone */ }
    await this.peer.close();
  }
}

/**
 * Connects to every worker and assigns it, attention workers first (primaries connect to
 * them while being assigned), then primaries of each stage together (TP ranks connect to each
 * other). `addresses[i]` serves `assignments[i]`.
 */
export async function connectWorkers(addresses: readonly string[], assignments: readonly WorkerAssignment[], opts: { token?: string; timeoutMs?: number } = {}): Promise<RemoteWorker[]> {
  if (addresses.length !== assignments.length) throw new HetisError('internal', `${addresses.length} addresses for ${assignments.length} workers`);
  const copts = { ...(opts.token !== undefined ? { token: opts.token } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), name: 'hetis engine' };
  const settled = await Promise.allSettled(addresses.map((a) => connect(a, copts)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const peers = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed !== undefined) {
    await Promise.all(peers.map((p) => p.close()));
    throw failed.reason;
  }
  try {
    const pids = new Array<number>(peers.length).fill(0);
    const order = assignments.map((a, i) => ({ a, i }));
    const attention = order.filter((o) => o.a.primary === undefined);
    for (const { a, i } of attention) pids[i] = ((await peers[i]!.request('assign', a as unknown as Json)).meta as unknown as { pid: number }).pid;
    // Ranks of one stage connect to each other while assigned: assign them concurrently.
    const stages = new Map<number, { a: WorkerAssignment; i: number }[]>();
    for (const o of order) if (o.a.primary !== undefined) stages.set(o.a.primary.stage, [...(stages.get(o.a.primary.stage) ?? []), o]);
    for (const group of stages.values()) {
      await Promise.all(group.map(async ({ a, i }) => { pids[i] = ((await peers[i]!.request('assign', a as unknown as Json)).meta as unknown as { pid: number }).pid; }));
    }
    return peers.map((p, i) => new RemoteWorker(p, assignments[i]!, addresses[i]!, pids[i]!));
  } catch (e) {
    await Promise.all(peers.map((p) => p.close()));
    throw e;
  }
}
