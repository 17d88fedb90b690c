// Owns: the engine loop shared by real serving and simulation: requests in, one step at a time
// (schedule, place heads, build the step, execute, update), re-dispatch between steps, and the
// records a run leaves. Must not: know whether the executor is real or simulated, or read a
// clock (callers pass the time).

import { assert } from '../util/errors.js';
import type { CostModel } from '../cost/types.js';
import { createDispatcher, placeHeads, type Dispatcher } from '../dispatch/place.js';
import { placeHeadsByMemory } from '../dispatch/static.js';
import { planMigrations, redispatchTrigger, type RedispatchPolicy } from '../dispatch/migrate.js';
import { layerTime } from '../dispatch/device-cost.js';
import type { ClusterState, DeviceLoad, DispatchDevice, MigrationTrigger, PlacedRequest } from '../dispatch/types.js';
import { KvManager } from './kv-manager.js';
import { Sequence } from './sequence.js';
import { schedule, insertWaiting, type Scheduled } from './scheduler.js';
import { stepCost, type DenseStage } from './step-cost.js';
import { describeStep } from './step-shape.js';
import { BeforeStep } from './before-step.js';
import { BusyWindow } from './busy-window.js';
import type { EngineListener, EngineRequest, Executor, FinishReason, RequestRecord, StepPlan, StepRecord } from './types.js';

export interface EngineConfig {
  /** The cost model the dispatcher and the step predictions use. */
  cost: CostModel;
  /** The dense path (one replica's pipeline stages). */
  stages: DenseStage[];
  /** Devices that hold KV heads; capacity in head-tokens. */
  devices: DispatchDevice[];
  /** Positions per KV block. */
  blockSize: number;
  tokenBudget: number;
  maxRunning: number;
  /** Tokens a request is expected to generate (capped by its maxTokens): what its heads reserve beyond the prompt. */
  expectedOutput: number;
  /** Fraction of each device's KV kept free by the dispatcher. */
  reserve: number;
  /** Token ids that end a sequence. */
  eosIds: readonly number[];
  /** 'cost': the dispatcher (I3); 'memory': heads split by free memory, no cost model (ablation). */
  placement: 'cost' | 'memory';
  /**
   * Pipeline the stages: as many micro-batches in flight as there are stages (virtual engines
   * sharing the KV pool and the waiting queue, taking turns). False: one step holds the whole
   * pipeline.
   */
  pipeline: boolean;
  /**
   * Keep only about this many of the latest step and request records (a long-running server;
   * listeners see every one as it happens). Absent: keep all (simulation reads them at the end).
   */
  history?: number;
  redispatch: RedispatchPolicy & { enabled: boolean };
}

export class Engine {
  readonly records: RequestRecord[] = [];
  readonly steps: StepRecord[] = [];
  private readonly kv: KvManager;
  private readonly devices: DispatchDevice[];
  private readonly loads: DeviceLoad[];
  private readonly disp: Dispatcher;
  /** Running sequences of each virtual engine (one per micro-batch in flight). */
  private readonly virtual: Sequence[][];
  /** The virtual engine whose micro-batch is issued next. */
  private turn = 0;
  private readonly waiting: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  /** Requests finished so far (the serving cost of a simulated step's finishes). */
  private finishedCount = 0;
  /** Seconds the server's work on one finished request adds to a predicted interval (cost.servingEvents). */
  private readonly finishCost: number;
  /** KV to free and heads to copy at the front of the next step. */
  private readonly before: BeforeStep;
  private imbalancedSteps = 0;
  private order = 0;
  private stepIndex = 0;
  private now = 0;
  /** When the previous step's issue interval ended (engine clock). */
  private lastEnd = -Infinity;
  /** Steps since the last one with prefill tokens (undefined: none yet). */
  private sincePrefill: number | undefined;
  /** The steps' latencies over the last second (how busy the engine has been). */
  private readonly busy = new BusyWindow();

  constructor(readonly config: EngineConfig, private readonly executor: Executor, private readonly listener: EngineListener = {}) {
    // Capacity in whole blocks (what the KV manager can hand out), in head-tokens.
    this.devices = config.devices.map((d) => ({ ...d, capacity: Math.floor(d.capacity / config.blockSize) * config.blockSize }));
    this.kv = new KvManager(this.devices.map((d) => Math.floor(d.capacity / config.blockSize)), config.blockSize);
    this.loads = this.devices.map(() => ({ reserved: 0, headTokens: 0, heads: 0 }));
    this.virtual = Array.from({ length: config.pipeline ? Math.max(1, config.stages.length) : 1 }, () => []);
    this.disp = createDispatcher({ devices: this.devices }, config.cost, this.virtual.length);
    this.before = new BeforeStep(this.devices.length);
    const first = config.stages[0];
    this.finishCost = first !== undefined ? config.cost.servingEvents?.(first.spec).finished ?? 0 : 0;
  }

  /** Every running sequence, virtual engine by virtual engine. */
  private get running(): Sequence[] {
    return this.virtual.flat();
  }

  submit(req: EngineRequest): void {
    assert(!this.byId.has(req.id), `request ${req.id} submitted twice`);
    const seq = new Sequence(req, this.order++);
    this.byId.set(req.id, seq);
    insertWaiting(this.waiting, seq);
  }

  /**
   * Ends a request now (client gone, stop string seen, server shutting down): waiting or
   * running, its KV is freed at the next step. False when it is not here (already finished).
   */
  abort(id: string, reason: FinishReason = 'abort'): boolean {
    const seq = this.byId.get(id);
    if (seq === undefined) return false;
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    this.finish(seq, reason, this.now);
    return true;
  }

  /** Ends every request (a primary is gone: nothing can run); returns their ids. */
  abortAll(reason: FinishReason): string[] {
    const ids = [...this.byId.keys()];
    for (const id of ids) this.abort(id, reason);
    return ids;
  }

  /** Ids of the running requests (admitted, holding KV). */
  runningIds(): string[] {
    return this.running.map((s) => s.id);
  }

  /** Tokens generated so far by a request that is still here. */
  generated(id: string): readonly number[] | undefined {
    return this.byId.get(id)?.generated;
  }

  /**
   * Hands KV freed since the last step to the executor now (call before going idle, so workers
   * do not hold finished requests' KV until the next step). Steps must not run concurrently.
   */
  async releaseFreed(): Promise<void> {
    if (this.before.pending.freed.length === 0 || this.executor.release === undefined) return;
    await this.executor.release(this.before.takeFreed());
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.virtual.some((v) => v.length > 0);
  }

  /** Requests running and waiting now. */
  counts(): { running: number; waiting: number } {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  /** Block table of a running request: per KV head, its device id and block ids. */
  blockTable(id: string): { head: number; device: string; blocks: number[] }[] {
    return this.kv.blockTable(id).map((h) => ({ head: h.head, device: this.devices[h.device]!.id, blocks: [...h.blocks] }));
  }

  /** Per device now: KV heads held ((request, head) pairs), head-tokens, blocks used and free. */
  deviceView(): { id: string; alive: boolean; heads: number; headTokens: number; usedBlocks: number; freeBlocks: number }[] {
    return this.devices.map((d, i) => ({
      id: d.id, alive: d.alive, heads: this.loads[i]!.heads, headTokens: this.loads[i]!.headTokens,
      usedBlocks: this.kv.usedBlocks(i), freeBlocks: this.kv.freeBlocks(i),
    }));
  }

  /** KV blocks used and free per device id. */
  kvUsage(): { id: string; used: number; free: number }[] {
    return this.devices.map((d, i) => ({ id: d.id, used: this.kv.usedBlocks(i), free: this.kv.freeBlocks(i) }));
  }

  /**
   * Issues one step (one micro-batch when pipelined) at time `now` (seconds on the caller's
   * clock). Returns the time until the next step can be issued, or undefined when nothing could
   * be scheduled (the caller waits for arrivals). Its tokens are out after the step's latency.
   */
  async step(now: number): Promise<number | undefined> {
    this.now = now;
    if (this.config.redispatch.enabled) this.redispatch();
    let chunks: Scheduled[] = [];
    // Turns go round the virtual engines; one with nothing to run gives its turn away.
    for (let tries = 0; tries < this.virtual.length && chunks.length === 0; tries++) {
      const running = this.virtual[this.turn]!;
      this.turn = (this.turn + 1) % this.virtual.length;
      const others = this.virtual.reduce((a, v) => a + (v === running ? 0 : v.length), 0);
      chunks = schedule(running, this.waiting, { tokenBudget: this.config.tokenBudget, maxRunning: this.config.maxRunning - others }, {
        grow: (seq, len) => this.kv.grow(seq.id, len),
        admit: (seq) => this.admit(seq),
        preempt: (seq) => this.preempt(seq),
      });
    }
    if (chunks.length === 0) {
      this.dropUnfittable();
      return undefined;
    }
    const plan = this.buildPlan(chunks);
    const result = await this.executor.execute(plan);
    this.sincePrefill = plan.shape.prefill.length > 0 ? 0 : this.sincePrefill !== undefined ? this.sincePrefill + 1 : undefined;
    this.busy.add(now, result.seconds);
    const finishedBefore = this.finishedCount;
    this.update(chunks, result.sampled, now + result.seconds);
    // A predicted interval (a simulated step) also covers the server's work on the requests the
    // step finished (their responses), which only now is known; a real step's next one simply
    // starts later.
    const finished = this.finishedCount - finishedBefore;
    const interval = result.interval !== undefined ? result.interval + finished * this.finishCost : result.seconds;
    this.lastEnd = now + interval;
    this.trim(this.steps);
    const record: StepRecord = {
      index: plan.index, start: now, seconds: result.seconds, interval, predictedSeconds: plan.predicted.seconds, predictedInterval: plan.predicted.interval,
      prefillTokens: plan.shape.prefill.reduce((a, c) => a + c.tokens, 0), decodeTokens: plan.shape.decodeTokens,
      migrations: plan.migrations.length, migratedBytes: plan.migrations.reduce((a, m) => a + m.positions, 0) * this.config.cost.kvBytesPerHeadToken(),
      kvUsedBlocks: Object.fromEntries(this.devices.map((d, i) => [d.id, this.kv.usedBlocks(i)])),
      ...(result.parts !== undefined ? { parts: result.parts, predictedParts: plan.predicted.parts, shape: plan.shape } : {}),
      ...(result.busy !== undefined ? { busy: Object.fromEntries(this.devices.map((d, i) => [d.id, result.busy![i] ?? 0])) } : {}),
    };
    this.steps.push(record);
    this.listener.onStep?.(record);
    return interval;
  }

  /**
   * The last step's issue interval ran `seconds` longer: work the engine's process did while it
   * ran (the simulated clock's cost of handling requests that arrived meanwhile). The next step
   * starts that much later without counting it as idle, and the step's record says so.
   */
  extendLastStep(seconds: number): void {
    if (seconds <= 0) return;
    this.lastEnd += seconds;
    const last = this.steps[this.steps.length - 1];
    if (last !== undefined) last.interval += seconds;
  }

  /**
   * Forgets the step and request history read so far (a harness that keeps all of a run's records
   * and has read them: the server bounds the history by `history` itself, and a history kept whole
   * over many runs grows the engine's heap, and its collections, run after run).
   */
  clearHistory(): void {
    this.steps.length = 0;
    this.records.length = 0;
  }

  /** Marks a device failed: its heads are re-homed, or their requests recomputed. */
  failDevice(id: string): void {
    const i = this.devices.findIndex((d) => d.id === id);
    assert(i >= 0, `unknown device ${id}`);
    this.devices[i]!.alive = false;
    this.migrate({ kind: 'failure', device: i });
  }

  /** Drops the oldest half of a history past twice the configured length (amortised O(1)). */
  private trim<T>(list: T[]): void {
    const keep = this.config.history;
    if (keep !== undefined && list.length >= 2 * keep) list.splice(0, list.length - keep);
  }

  /** A failed device is back (empty): the dispatcher may place heads on it again. */
  reviveDevice(id: string): void {
    const i = this.devices.findIndex((d) => d.id === id);
    assert(i >= 0, `unknown device ${id}`);
    assert(this.kv.usedBlocks(i) === 0, `device ${id} comes back holding KV`);
    this.devices[i]!.alive = true;
  }

  /**
   * Sends running requests back to wait, their KV dropped, to be recomputed from their tokens
   * (after a step failed half-way and their KV on the workers can no longer be trusted).
   * Without ids: every running request.
   */
  recompute(ids?: readonly string[]): void {
    const targets = ids === undefined ? this.running : [...new Set(ids)].map((id) => this.byId.get(id)).filter((s): s is Sequence => s?.status === 'running');
    for (const seq of targets) {
      this.preempt(seq);
      this.removeRunning(seq);
      insertWaiting(this.waiting, seq);
    }
  }

  // ---- admission, preemption, placement ------------------------------------------------

  private admit(seq: Sequence): boolean {
    const kvHeads = this.config.cost.model.nKvHeads;
    // Reservations are whole blocks, as the KV manager hands them out (a head of 33 tokens
    // holds 48 positions with 16-token blocks), so what the dispatcher admits can be allocated.
    const expected = this.roundToBlocks(Math.max(seq.numTokens, seq.req.promptLength + Math.min(seq.req.maxTokens, this.config.expectedOutput)));
    const state = this.stateView();
    const request = { id: seq.id, kvHeads, contextTokens: seq.numTokens, expectedTokens: expected };
    const p = this.config.placement === 'cost' ? placeHeads(request, state, this.disp) : placeHeadsByMemory(request, state);
    if (!p.ok) return false;
    const deviceOfHead = p.counts.flatMap((c, i) => Array.from({ length: c }, () => i));
    if (!this.kv.allocate(seq.id, deviceOfHead, seq.numTokens)) return false;
    seq.counts = p.counts;
    seq.deviceOfHead = deviceOfHead;
    seq.deviceIds = deviceOfHead.map((d) => this.devices[d]!.id);
    seq.expected = expected;
    seq.status = 'running';
    this.addLoad(seq, 1);
    return true;
  }

  private roundToBlocks(tokens: number): number {
    const b = this.config.blockSize;
    return Math.ceil(tokens / b) * b;
  }

  private preempt(seq: Sequence): void {
    this.release(seq);
    seq.status = 'preempted';
    seq.preemptions++;
    seq.computed = 0;
  }

  /** Frees a sequence's KV and load; the executor frees worker memory at the next step. */
  private release(seq: Sequence): void {
    if (seq.counts === undefined) return;
    this.before.free(seq.id, seq.counts);
    this.addLoad(seq, -1);
    this.kv.free(seq.id);
    seq.counts = undefined;
    seq.deviceOfHead = undefined;
    seq.deviceIds = undefined;
  }

  private addLoad(seq: Sequence, sign: 1 | -1): void {
    seq.counts!.forEach((c, i) => {
      if (c === 0) return;
      const l = this.loads[i]!;
      l.heads += sign * c;
      l.headTokens += sign * c * seq.numTokens;
      l.reserved += sign * c * seq.expected;
    });
  }

  /** With nothing running, a waiting request that cannot be placed in an empty cluster never will be. */
  private dropUnfittable(): void {
    if (this.running.length > 0 || this.waiting.length === 0) return;
    const seq = this.waiting.shift()!;
    this.finish(seq, 'error', this.now);
  }

  private removeRunning(seq: Sequence): void {
    for (const v of this.virtual) {
      const i = v.indexOf(seq);
      if (i >= 0) { v.splice(i, 1); return; }
    }
  }

  private stateView(): ClusterState {
    return { devices: this.devices, loads: this.loads, requests: [], reserve: this.config.reserve };
  }

  // ---- building and finishing a step ------------------------------------------------------

  private buildPlan(chunks: Scheduled[]): StepPlan {
    const work = this.before.take();
    const { chunks: stepChunks, headDevices, shape } = describeStep(chunks, this.devices, {
      idle: Math.max(0, this.now - this.lastEnd), sincePrefill: this.sincePrefill, recentBusy: this.busy.share(this.now),
      migratedHeadTokens: work.migratedHeadTokens, migratedHeads: work.migratedHeads, freedRequests: work.freedRequests,
    });
    const predicted = stepCost(this.config.cost, this.config.stages, this.devices, shape);
    return { index: this.stepIndex++, chunks: stepChunks, headDevices, freed: work.freed, migrations: work.migrations, predicted, shape };
  }

  private update(chunks: Scheduled[], sampled: Record<string, number>, end: number): void {
    const eos = this.config.eosIds;
    const context = this.config.cost.model.contextLength;
    for (const { seq, count } of chunks) {
      if (seq.status !== 'running') continue; // aborted while the step ran
      const before = seq.numTokens;
      seq.computed += count;
      if (seq.computed < seq.numTokens) continue;
      const tok = sampled[seq.id];
      assert(tok !== undefined, `executor returned no token for ${seq.id}`);
      if (eos.includes(tok)) { this.finish(seq, 'stop', end); continue; }
      seq.generated.push(tok);
      seq.firstTokenAt ??= end;
      this.listener.onToken?.(seq.id, tok, end);
      if (seq.status !== 'running') continue; // the listener ended it (a stop string)
      // The new token's KV position is computed next step: loads follow the context.
      seq.counts!.forEach((c, i) => { this.loads[i]!.headTokens += c * (seq.numTokens - before); });
      if (seq.numTokens > seq.expected) {
        const grown = this.roundToBlocks(seq.numTokens);
        seq.counts!.forEach((c, i) => { this.loads[i]!.reserved += c * (grown - seq.expected); });
        seq.expected = grown;
      }
      if (seq.generated.length >= seq.req.maxTokens || seq.numTokens >= context) this.finish(seq, 'length', end);
    }
  }

  private finish(seq: Sequence, reason: FinishReason, at: number): void {
    if (seq.status === 'finished') return;
    this.finishedCount++;
    this.release(seq);
    this.removeRunning(seq);
    seq.status = 'finished';
    seq.finishedAt = at;
    seq.finishReason = reason;
    this.byId.delete(seq.id);
    const record: RequestRecord = {
      id: seq.id, arrival: seq.req.arrival, promptLength: seq.req.promptLength, outputLength: seq.generated.length,
      ...(seq.firstTokenAt !== undefined ? { firstTokenAt: seq.firstTokenAt } : {}),
      finishedAt: at, finishReason: reason, preemptions: seq.preemptions,
    };
    this.trim(this.records);
    this.records.push(record);
    this.listener.onFinish?.(record);
  }

  // ---- re-dispatch between steps --------------------------------------------------------------

  private redispatch(): void {
    const blocks = this.devices.map((_, i) => ({ used: this.kv.usedBlocks(i), total: this.kv.totalBlocks(i) }));
    const times = this.devices.map((_, i) => layerTime(this.disp.costs[i]!, this.loads[i]!.heads, this.loads[i]!.headTokens));
    const { trigger, streak } = redispatchTrigger(blocks, times, this.config.redispatch, this.imbalancedSteps);
    this.imbalancedSteps = streak;
    if (trigger !== undefined) this.migrate(trigger);
  }

  private migrate(trigger: MigrationTrigger): void {
    const requests: PlacedRequest[] = this.running.filter((s) => s.counts !== undefined)
      .map((s) => ({ id: s.id, contextTokens: s.numTokens, expectedTokens: s.expected, counts: s.counts! }));
    const state: ClusterState = { devices: this.devices, loads: this.loads, requests, reserve: this.config.reserve };
    const plan = planMigrations(state, this.disp, this.config.cost, trigger);
    const toRecompute = new Set(plan.recompute);
    for (const m of plan.migrations) if (m.rebuild) toRecompute.add(m.request); // lost KV: recompute the request
    for (const id of toRecompute) {
      const seq = this.byId.get(id);
      if (seq === undefined || seq.status !== 'running') continue;
      this.preempt(seq);
      this.removeRunning(seq);
      insertWaiting(this.waiting, seq);
    }
    for (const m of plan.migrations) {
      if (m.rebuild || toRecompute.has(m.request)) continue;
      const seq = this.byId.get(m.request)!;
      const heads = seq.deviceOfHead!.map((d, h) => (d === m.from ? h : -1)).filter((h) => h >= 0).slice(0, m.heads);
      for (const h of heads) if (!this.moveOne(seq, h, m.to)) break;
    }
  }

  /**
   * Moves KV head `head` of running request `id` to device `to` (its KV is copied before the
   * next step). False when it cannot move now (not running, same device, no room there).
   */
  moveHead(id: string, head: number, to: string): boolean {
    const seq = this.byId.get(id);
    const t = this.devices.findIndex((d) => d.id === to);
    if (seq === undefined || seq.status !== 'running' || seq.deviceOfHead === undefined || t < 0 || !this.devices[t]!.alive) return false;
    if (seq.deviceOfHead[head] === undefined || seq.deviceOfHead[head] === t) return false;
    return this.moveOne(seq, head, t);
  }

  private moveOne(seq: Sequence, h: number, to: number): boolean {
    const from = seq.deviceOfHead![h]!;
    if (this.kv.moveHead(seq.id, h, to) === undefined) return false;
    seq.deviceOfHead![h] = to;
    seq.deviceIds = seq.deviceOfHead!.map((d) => this.devices[d]!.id);
    this.addLoad(seq, -1);
    seq.counts![from]!--;
    seq.counts![to]!++;
    this.addLoad(seq, 1);
    this.before.migrate({ request: seq.id, head: h, from: this.devices[from]!.id, to: this.devices[to]!.id, positions: seq.computed, rebuild: false }, to);
    return true;
  }
}
