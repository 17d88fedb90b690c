// Owns: the re-dispatcher: which heads to move, from where to where, when a device passes its
// memory high-watermark, fails, or the predicted per-device times stay unbalanced.
// Must not: copy KV or mutate the state (the engine applies the plan between steps).

import type { CostModel } from '../cost/types.js';
import { layerTime } from './device-cost.js';
import { batchLayerTime, freeHeadTokens, type Dispatcher } from './place.js';
import type { ClusterState, DeviceLoad, Migration, MigrationPlan, MigrationTrigger, PlacedRequest } from './types.js';

export interface MigrationOptions {
  /** After a memory trigger, move heads until the device's reservation is at most this fraction of capacity. */
  memoryTarget: number;
  /** Imbalance moves stop when the best move gains less than this fraction of the step time. */
  minGain: number;
  /** At most this many migrations per plan (copying competes with serving). */
  maxMigrations: number;
}

export const DEFAULT_MIGRATION_OPTIONS: MigrationOptions = { memoryTarget: 0.8, minGain: 0.01, maxMigrations: 64 };

/** When the engine re-dispatches between steps (EngineConfig.redispatch). */
export interface RedispatchPolicy {
  /** A device whose used blocks pass this fraction of its blocks sheds heads. */
  memoryWatermark: number;
  /** Predicted per-device imbalance (max / mean - 1 of the layer times) that counts as imbalanced. */
  imbalance: number;
  /** Consecutive imbalanced steps before heads move. */
  imbalanceSteps: number;
}

/**
 * Whether to re-dispatch before the next step: the first device whose used KV blocks pass the
 * watermark share of its blocks (memory; the imbalance streak is left as it was), else the
 * per-device layer times of the devices with work (>= 2 of them) imbalanced for
 * `imbalanceSteps` steps in a row, this one included (`streak`: the steps in a row before it).
 * Returns the trigger, if any, and the streak after this step (0 once it fires).
 */
export function redispatchTrigger(
  blocks: readonly { used: number; total: number }[], layerTimes: readonly number[], policy: RedispatchPolicy, streak: number,
): { trigger?: MigrationTrigger; streak: number } {
  const full = blocks.findIndex((b) => b.total > 0 && b.used > policy.memoryWatermark * b.total);
  if (full >= 0) return { trigger: { kind: 'memory', device: full }, streak };
  const times = layerTimes.filter((t) => t > 0);
  if (times.length < 2) return { streak: 0 };
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const now = Math.max(...times) / mean - 1 > policy.imbalance ? streak + 1 : 0;
  return now >= policy.imbalanceSteps ? { trigger: { kind: 'imbalance' }, streak: 0 } : { streak: now };
}

/** Working copy of the loads and placements that a plan updates as it adds moves. */
class Draft {
  loads: DeviceLoad[];
  counts: Map<string, number[]>;
  constructor(readonly state: ClusterState, readonly disp: Dispatcher) {
    this.loads = state.loads.map((l) => ({ ...l }));
    this.counts = new Map(state.requests.map((r) => [r.id, r.counts.slice()]));
  }
  time(i: number, dHeads = 0, dTokens = 0): number {
    const l = this.loads[i]!;
    return layerTime(this.disp.costs[i]!, l.heads + dHeads, l.headTokens + dTokens);
  }
  free(i: number): number {
    return freeHeadTokens({ ...this.state, loads: this.loads }, i);
  }
  /** Moves `heads` of r from `from` (may be dead) to `to` in the draft. */
  move(r: PlacedRequest, heads: number, from: number, to: number): void {
    const c = this.counts.get(r.id)!;
    c[from]! -= heads;
    c[to]! += heads;
    for (const [i, sign] of [[from, -1], [to, 1]] as const) {
      const l = this.loads[i]!;
      l.heads += sign * heads;
      l.headTokens += sign * heads * r.contextTokens;
      l.reserved += sign * heads * r.expectedTokens;
    }
  }
  layerSeconds(): number {
    return batchLayerTime({ ...this.state, loads: this.loads }, this.disp);
  }
  /** The live device (not `except`) with room for one head of r whose time after taking it is least. */
  bestHome(r: PlacedRequest, except: number): number {
    let best = -1;
    let bestT = Infinity;
    for (let i = 0; i < this.state.devices.length; i++) {
      if (i === except || !this.state.devices[i]!.alive || this.free(i) < r.expectedTokens) continue;
      const t = this.time(i, 1, r.contextTokens);
      if (t < bestT) { bestT = t; best = i; }
    }
    return best;
  }
}

/**
 * Plans migrations for `trigger`. Bytes are KV bytes to copy: heads x context x
 * cost.kvBytesPerHeadToken(). Deterministic: candidates are taken in a fixed order.
 */
export function planMigrations(
  state: ClusterState, disp: Dispatcher, cost: CostModel, trigger: MigrationTrigger,
  options: MigrationOptions = DEFAULT_MIGRATION_OPTIONS,
): MigrationPlan {
  const draft = new Draft(state, disp);
  const before = batchLayerTime(state, disp);
  const perHeadToken = cost.kvBytesPerHeadToken();
  const migrations: Migration[] = [];
  const recompute: string[] = [];
  const add = (r: PlacedRequest, heads: number, from: number, to: number, rebuild: boolean): void => {
    draft.move(r, heads, from, to);
    migrations.push({ request: r.id, heads, from, to, bytes: rebuild ? 0 : heads * r.contextTokens * perHeadToken, rebuild });
  };

  if (trigger.kind === 'failure') {
    // Every head on the failed device needs a new home; its KV is gone, so it is rebuilt there.
    // Big requests first (hardest to fit). A request that cannot be re-homed is recomputed.
    const f = trigger.device;
    const affected = state.requests.filter((r) => (r.counts[f] ?? 0) > 0)
      .sort((a, b) => b.expectedTokens - a.expectedTokens || (a.id < b.id ? -1 : 1));
    for (const r of affected) {
      const start = migrations.length;
      for (let h = 0; h < r.counts[f]!; h++) {
        const to = draft.bestHome(r, f);
        if (to < 0) break;
        add(r, 1, f, to, true);
      }
      if (migrations.length - start < r.counts[f]!) {
        for (const m of migrations.splice(start)) draft.move(r, 1, m.to, f); // undo the partial re-homing
        recompute.push(r.id);
      }
    }
  } else if (trigger.kind === 'memory') {
    // Free the device down to the target, preferring requests whose move frees the most
    // reservation per byte copied (early in their generation: expected / context is large).
    const m = trigger.device;
    const target = state.devices[m]!.capacity * options.memoryTarget;
    const candidates = state.requests.filter((r) => (r.counts[m] ?? 0) > 0)
      .sort((a, b) => b.expectedTokens / Math.max(1, b.contextTokens) - a.expectedTokens / Math.max(1, a.contextTokens) || (a.id < b.id ? -1 : 1));
    for (const r of candidates) {
      while (draft.loads[m]!.reserved > target && draft.counts.get(r.id)![m]! > 0 && migrations.length < options.maxMigrations) {
        const to = draft.bestHome(r, m);
        if (to < 0) break;
        add(r, 1, m, to, false);
      }
      if (draft.loads[m]!.reserved <= target || migrations.length >= options.maxMigrations) break;
    }
  } else {
    // Imbalance: move one head at a time off the slowest device, choosing the move with the
    // largest gain per byte copied, while a move still lowers that device's time without making
    // the receiver the new slowest. The plan is dropped if it gains less than minGain overall.
    while (migrations.length < options.maxMigrations) {
      let slow = 0;
      for (let i = 1; i < state.devices.length; i++) if (draft.time(i) > draft.time(slow)) slow = i;
      const tSlow = draft.time(slow);
      let best: { r: PlacedRequest; to: number; score: number } | undefined;
      for (const r of state.requests) {
        if ((draft.counts.get(r.id)![slow] ?? 0) === 0) continue;
        const to = draft.bestHome(r, slow);
        if (to < 0) continue;
        const gain = tSlow - Math.max(draft.time(slow, -1, -r.contextTokens), draft.time(to, 1, r.contextTokens));
        if (gain <= 0) continue;
        const score = gain / Math.max(1, r.contextTokens * perHeadToken);
        if (best === undefined || score > best.score) best = { r, to, score };
      }
      if (best === undefined) break;
      add(best.r, 1, slow, best.to, false);
    }
    if (before - draft.layerSeconds() < options.minGain * before) {
      for (const m of migrations.splice(0).reverse()) draft.move(state.requests.find((r) => r.id === m.request)!, m.heads, m.to, m.from);
    }
  }
  return { migrations: merge(migrations), recompute, layerSecondsBefore: before, layerSecondsAfter: draft.layerSeconds() };
}

/** Joins moves of the same request between the same devices into one migration. */
function merge(ms: Migration[]): Migration[] {
  const out: Migration[] = [];
  const at = new Map<string, Migration>();
  for (const m of ms) {
    const key = `${m.request}\u0000${m.from}\u0000${m.to}\u0000${m.rebuild}`;
    const prev = at.get(key);
    if (prev) { prev.heads += m.heads; prev.bytes += m.bytes; continue; }
    const copy = { ...m };
    at.set(key, copy);
    out.push(copy);
  }
  return out;
}
