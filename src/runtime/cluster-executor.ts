// Owns: running engine steps on a cluster of workers: numbering requests as sequences, freeing
// KV the engine let go, carrying out migrations (copy a head's KV to its new owner, then drop
// it at the old one, before the step that uses the new placement), sending the step through the
// pipeline stages (every rank of a stage at once), and sampling from the last stage's logits.
// Must not: know how handles reach their workers (in this process or over the transport).

import type { Executor, StepMigration, StepPlan, StepResult } from '../engine/types.js';
import type { ModelSpec } from '../model/spec.js';
import { assert, HetisError } from '../util/errors.js';
import type { PrimaryStep, PrimaryStepReply, WorkerHandle } from './cluster-types.js';
import type { HeadKvExport } from './head-kv.js';
import type { StepSequence } from './primary.js';
import { kvHeadsOfRank } from './shard.js';

/** A step could not run because workers are gone: the engine devices they served. */
export class DeviceFailure extends HetisError {
  constructor(readonly devices: readonly string[], readonly primary: boolean, options?: { cause?: unknown }) {
    super('unavailable', `worker${devices.length > 1 ? 's' : ''} of ${devices.join(', ')} unreachable`, options);
    this.name = 'DeviceFailure';
  }
}

/** How long a failed step waits for the connection of a killed worker to report closed, ms. */
const CLOSE_GRACE_MS = 200;

export class ClusterExecutor implements Executor {
  /** Primary ranks by stage, rank order. */
  readonly stages: WorkerHandle[][];
  /** Requests whose KV was being moved by the last step that failed (their KV is suspect). */
  interrupted: string[] = [];
  /** Dead devices already reported by a DeviceFailure (until a restarted worker replaces them). */
  private readonly reported = new Set<string>();
  /** Handles of each engine device id (a primary device: all its ranks). */
  private readonly byDevice = new Map<string, WorkerHandle[]>();
  private readonly seqOf = new Map<string, number>();
  /** Engine devices that may hold KV of each request (its heads' owners in any step, migration targets). */
  private readonly holders = new Map<string, Set<string>>();
  private nextSeq = 1;

  constructor(readonly spec: ModelSpec, private workers: WorkerHandle[]) {
    for (const w of workers) {
      const list = this.byDevice.get(w.assignment.deviceId) ?? [];
      list.push(w);
      this.byDevice.set(w.assignment.deviceId, list);
    }
    const primaries = workers.filter((w) => w.assignment.primary !== undefined);
    if (primaries.length === 0) throw new HetisError('bad_input', 'a cluster needs at least one primary worker');
    const nStages = primaries[0]!.assignment.primary!.stages;
    this.stages = Array.from({ length: nStages }, (_, s) => primaries.filter((w) => w.assignment.primary!.stage === s)
      .sort((a, b) => a.assignment.primary!.rank - b.assignment.primary!.rank));
    this.stages.forEach((st, s) => { if (st.length === 0) throw new HetisError('bad_input', `pipeline stage ${s} has no primary worker`); });
  }

  /** Sequence number of a running request (for tests and the cluster view). */
  sequenceOf(request: string): number | undefined {
    return this.seqOf.get(request);
  }

  /** The workers, in assignment order (a restarted worker takes its predecessor's place). */
  get handles(): readonly WorkerHandle[] {
    return this.workers;
  }

  /** Engine devices with a worker known gone. */
  deadDevices(): string[] {
    return [...this.byDevice].filter(([, hs]) => hs.some((h) => !h.alive())).map(([id]) => id);
  }

  /** Puts a restarted worker in the place of the one that served the same attention device. */
  replace(handle: WorkerHandle): void {
    const id = handle.assignment.deviceId;
    const i = this.workers.findIndex((w) => w.assignment.deviceId === id && w.assignment.primary === undefined);
    if (i < 0) throw new HetisError('internal', `no attention device ${id} to replace`);
    this.workers[i] = handle;
    this.byDevice.set(id, [handle]);
    this.reported.delete(id);
  }

  async execute(step: StepPlan): Promise<StepResult> {
    try {
      return await this.run(step);
    } catch (e) {
      this.interrupted = step.migrations.map((m) => m.request);
      if (e instanceof DeviceFailure) throw e;
      // A killed worker's connections close promptly; give the close a moment to be seen.
      await new Promise((r) => setTimeout(r, CLOSE_GRACE_MS));
      this.throwIfNewlyDead(e);
      throw e;
    }
  }

  /** Reports devices seen gone since the last report, once each (until a restarted worker replaces them). */
  private throwIfNewlyDead(cause?: unknown): void {
    const dead = this.deadDevices().filter((d) => !this.reported.has(d));
    if (dead.length === 0) return;
    for (const d of dead) this.reported.add(d);
    throw new DeviceFailure(dead, this.isPrimary(dead), cause !== undefined ? { cause } : undefined);
  }

  private isPrimary(devices: readonly string[]): boolean {
    return devices.some((d) => this.byDevice.get(d)?.some((h) => h.assignment.primary !== undefined) ?? false);
  }

  private async run(step: StepPlan): Promise<StepResult> {
    // A worker seen gone since the last step is reported before anything runs (whether or not
    // this step needs it), so its device is failed and restarted between steps.
    this.throwIfNewlyDead();
    const t0 = performance.now();
    await this.free(step.freed, true);
    const t1 = performance.now();
    for (const m of step.migrations) await this.migrate(m);
    const t2 = performance.now();
    const built = this.build(step);
    let x: Float32Array | undefined;
    let last: PrimaryStepReply | undefined;
    const compute = { dense: 0, attention: 0, wait: 0, allreduce: 0 };
    for (const stage of this.stages) {
      const replies = await Promise.all(stage.map((w) => w.step({ ...built, ...(x !== undefined ? { x } : {}) })));
      last = replies[0]!;
      x = last.x;
      for (const k of Object.keys(compute) as (keyof typeof compute)[]) compute[k] += Math.max(...replies.map((r) => r.timing[k]));
    }
    const t3 = performance.now();
    const tokens: Record<string, number> = {};
    const sampled = step.chunks.filter((c) => c.sample);
    if (sampled.length > 0) {
      assert(last?.tokens !== undefined && last.tokens.length === sampled.length, 'the last stage returned no tokens');
      sampled.forEach((c, i) => { tokens[c.request] = last!.tokens![i]!; });
    }
    const t4 = performance.now();
    const seconds = (t4 - t0) / 1000;
    const stepSeconds = (t3 - t2) / 1000;
    const inside = compute.dense + compute.attention + compute.wait + compute.allreduce;
    return {
      sampled: tokens, seconds,
      parts: {
        free: (t1 - t0) / 1000, migrate: (t2 - t1) / 1000, ...compute,
        transport: Math.max(0, stepSeconds - inside), sample: (t4 - t3) / 1000,
      },
    };
  }

  release(requests: readonly string[]): Promise<void> {
    return this.free(requests, false);
  }

  private build(step: StepPlan): Omit<PrimaryStep, 'x'> {
    const n = step.chunks.reduce((a, c) => a + c.count, 0);
    const tokens = new Int32Array(n), seqs = new Int32Array(n), positions = new Int32Array(n);
    const sequences: StepSequence[] = [];
    const logitRows: number[] = [];
    const sampling: PrimaryStep['sampling'] = [];
    let row = 0;
    for (const c of step.chunks) {
      assert(c.tokens !== undefined, `step ${step.index}: chunk of ${c.request} carries no token ids`);
      const seq = this.seq(c.request);
      const owners = step.headDevices[c.request];
      assert(owners !== undefined && owners.length === this.spec.nKvHeads, `step ${step.index}: ${c.request} has no placement for its ${this.spec.nKvHeads} heads`);
      this.hold(c.request, owners);
      for (let j = 0; j < c.count; j++) { tokens[row + j] = c.tokens[j]!; seqs[row + j] = seq; positions[row + j] = c.start + j; }
      sequences.push({ seq, start: c.start, count: c.count, row, owners });
      row += c.count;
      if (c.sample) { logitRows.push(row - 1); sampling.push(c.sampling ?? null); }
    }
    return { index: step.index, tokens, seqs, positions, sequences, logitRows: Int32Array.from(logitRows), sampling };
  }

  /** Notes that `devices` may hold KV of `request`. */
  private hold(request: string, devices: readonly string[]): void {
    let set = this.holders.get(request);
    if (set === undefined) { set = new Set(); this.holders.set(request, set); }
    for (const d of devices) set.add(d);
  }

  /**
   * Frees the KV of `ids` on the devices that may hold it. Before a step (`beforeStep`), the
   * primaries' frees are not waited for: the step goes to each primary on the same connection
   * after its free, so it frees first; an attention worker's free is waited for, since the
   * attends a step causes reach it from the primaries on other connections. (Waiting for every
   * worker cost ~1 ms a step when idle workers had to wake up to free nothing.)
   */
  private async free(ids: readonly string[], beforeStep: boolean): Promise<void> {
    const seqs: number[] = [];
    const devices = new Set<string>();
    for (const id of ids) {
      const seq = this.seqOf.get(id);
      if (seq !== undefined) seqs.push(seq);
      for (const d of this.holders.get(id) ?? []) devices.add(d);
      this.seqOf.delete(id);
      this.holders.delete(id);
    }
    if (seqs.length === 0) return;
    const targets = [...devices].flatMap((d) => this.byDevice.get(d) ?? []).filter((w) => w.alive());
    const waited: Promise<void>[] = [];
    for (const w of targets) {
      const done = w.free(seqs);
      if (beforeStep && w.assignment.primary !== undefined) done.catch(() => {}); // the step itself reports a primary gone
      else waited.push(done);
    }
    await Promise.all(waited);
  }

  /** The workers of `device` that hold layers of `head` (a primary device: the owning rank of each stage). */
  private holdersOf(device: string, head: number): WorkerHandle[] {
    const list = this.byDevice.get(device);
    if (list === undefined) throw new HetisError('internal', `migration names unknown device ${device}`);
    return list.filter((w) => {
      const p = w.assignment.primary;
      if (p === undefined) return true;
      const [h0, h1] = kvHeadsOfRank(this.spec, p.rank, p.size);
      return head >= h0 && head < h1;
    });
  }

  private async migrate(m: StepMigration): Promise<void> {
    const seq = this.seqOf.get(m.request);
    if (seq === undefined) return; // not started here yet: nothing to copy
    const from = this.holdersOf(m.from, m.head);
    const parts: HeadKvExport[] = await Promise.all(from.map((w) => w.exportHead(seq, m.head)));
    const x = joinLayers(parts);
    this.hold(m.request, [m.to]);
    await Promise.all(this.holdersOf(m.to, m.head).map((w) => w.importHead(seq, m.head, x)));
    await Promise.all(from.map((w) => w.dropHead(seq, m.head)));
  }

  private seq(id: string): number {
    let s = this.seqOf.get(id);
    if (s === undefined) { s = this.nextSeq++; this.seqOf.set(id, s); }
    return s;
  }
}

/** One export covering every layer from per-stage exports of consecutive layer ranges. */
function joinLayers(parts: HeadKvExport[]): HeadKvExport {
  const sorted = [...parts].sort((a, b) => a.layers[0] - b.layers[0]);
  if (sorted.length === 1) return sorted[0]!;
  const len = sorted[0]!.length;
  for (const p of sorted) assert(p.length === len, 'stages hold different KV lengths for one head');
  const total = sorted.reduce((a, p) => a + p.data.length, 0);
  const data = new Float32Array(total);
  let o = 0;
  for (const p of sorted) { data.set(p.data, o); o += p.data.length; }
  return { length: len, layers: [sorted[0]!.layers[0], sorted[sorted.length - 1]!.layers[1]], data };
}
