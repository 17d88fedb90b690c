// The head dispatcher (I3) and re-dispatcher: property tests on random clusters and loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { CostModel, Estimate } from '../src/cost/types.js';
import type { ModelSpec } from '../src/model/spec.js';
import type { DeviceSpec, LinkSpec } from '../src/hardware/types.js';
import type { ClusterState, DispatchDevice, HeadRequest } from '../src/dispatch/types.js';
import { createDispatcher, placeHeads, batchLayerTime, type Dispatcher } from '../src/dispatch/place.js';
import { placeHeadsExact } from '../src/dispatch/exact.js';
import { addRequest, emptyState, applyMigrations, setAlive } from '../src/dispatch/state.js';
import { planMigrations, redispatchTrigger } from '../src/dispatch/migrate.js';

const MODEL: ModelSpec = {
  name: 'm', nLayers: 40, nHeads: 40, nKvHeads: 8, headDim: 128, dim: 5120, ffnDim: 13824,
  vocabSize: 32000, contextLength: 4096, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};

const est = (seconds: number, part: string): Estimate => ({ seconds, parts: { [part]: seconds } });
/** An affine cost model, to isolate the dispatcher from the real ones (tested through them elsewhere). */
function affineCost(model: ModelSpec): CostModel {
  const kvBytesPerLayer = 2 * model.headDim * 2;
  const unused = (): never => { throw new Error('not used by the dispatcher'); };
  return {
    model, precision: { weight: 2, kv: 2, activation: 2 },
    denseLayer: unused, lmHead: unused, prefillAttention: unused, allReduce: unused, weightBytes: unused,
    decodeAttention: (d: DeviceSpec, headTokens: number, heads: number) =>
      est(8e-6 + 0.5e-6 * heads + (headTokens * kvBytesPerLayer) / (d.memoryBandwidth * d.memoryEfficiency), 'attention'),
    sendRecv: (l: LinkSpec, bytes: number) => est(l.latency + bytes / l.bandwidth, 'link'),
    kvBytesPerHeadToken: () => kvBytesPerLayer * model.nLayers,
  };
}

function device(i: number, bandwidthGBs: number, capacity: number, primary: boolean, linkGBs: number): DispatchDevice {
  const spec: DeviceSpec = {
    name: `dev${bandwidthGBs}`, kind: 'gpu', peakFlops: 1e14, memoryBytes: 24e9, memoryBandwidth: bandwidthGBs * 1e9,
    computeEfficiency: 0.7, memoryEfficiency: 0.8, kernelOverhead: 1e-5, defaultIntraLink: 'pcie4',
  };
  return { id: `d${i}`, spec, primary, link: { kind: 'eth100', bandwidth: linkGBs * 1e9, latency: 30e-6 }, alive: true, capacity };
}

const arbDevice = fc.record({
  bw: fc.constantFrom(300, 550, 900, 2000),
  cap: fc.integer({ min: 2_000, max: 400_000 }),
  link: fc.constantFrom(12, 25),
});
const arbRequest = fc.record({ ctx: fc.integer({ min: 1, max: 3000 }), out: fc.integer({ min: 1, max: 1000 }) });

/** A cluster (first device primary) with `load` requests placed by the dispatcher. */
function build(devs: { bw: number; cap: number; link: number }[], load: { ctx: number; out: number }[], kvHeads = 8): { state: ClusterState; disp: Dispatcher; cost: CostModel } {
  const cost = affineCost({ ...MODEL, nKvHeads: kvHeads, nHeads: kvHeads * 5 });
  let state = emptyState(devs.map((d, i) => device(i, d.bw, d.cap, i === 0, d.link)));
  const disp = createDispatcher(state, cost);
  load.forEach((r, i) => {
    const p = placeHeads({ id: `r${i}`, kvHeads, contextTokens: r.ctx, expectedTokens: r.ctx + r.out }, state, disp);
    if (p.ok) state = addRequest(state, { id: `r${i}`, contextTokens: r.ctx, expectedTokens: r.ctx + r.out, counts: p.counts });
  });
  return { state, disp, cost };
}

function checkCapacity(state: ClusterState): void {
  state.loads.forEach((l, i) => {
    assert.ok(l.reserved <= state.devices[i]!.capacity * (1 - state.reserve) + 1e-6, `device ${i} over capacity: ${l.reserved} > ${state.devices[i]!.capacity}`);
  });
}

test('every head is placed exactly once, on live devices, within capacity; or the answer says it does not fit', () => {
  fc.assert(fc.property(fc.array(arbDevice, { minLength: 1, maxLength: 10 }), fc.array(arbRequest, { maxLength: 60 }), arbRequest, (devs, load, r) => {
    const { state, disp } = build(devs, load);
    const req: HeadRequest = { id: 'new', kvHeads: 8, contextTokens: r.ctx, expectedTokens: r.ctx + r.out };
    const p = placeHeads(req, state, disp);
    if (!p.ok) {
      assert.ok(p.needed > 0);
      return;
    }
    assert.equal(p.counts.reduce((a, c) => a + c, 0), 8);
    assert.ok(p.counts.every((c) => Number.isInteger(c) && c >= 0));
    checkCapacity(addRequest(state, { id: 'new', contextTokens: r.ctx, expectedTokens: r.ctx + r.out, counts: p.counts }));
    assert.deepEqual(placeHeads(req, state, disp), p, 'deterministic');
  }));
});

test('reordering the devices does not change the quality of the placement', () => {
  fc.assert(fc.property(fc.array(arbDevice, { minLength: 2, maxLength: 8 }), fc.array(arbRequest, { maxLength: 30 }), arbRequest, fc.nat(), (devs, load, r, seed) => {
    const a = build(devs, load);
    // Same cluster and loads, devices in another order (the primary moves too).
    const order = devs.map((_, i) => i).sort((x, y) => ((x * 7919 + seed) % 13) - ((y * 7919 + seed) % 13) || x - y);
    const state: ClusterState = {
      ...a.state,
      devices: order.map((i) => a.state.devices[i]!), loads: order.map((i) => a.state.loads[i]!),
      requests: a.state.requests.map((q) => ({ ...q, counts: order.map((i) => q.counts[i]!) })),
    };
    const disp = createDispatcher(state, a.cost);
    const req: HeadRequest = { id: 'new', kvHeads: 8, contextTokens: r.ctx, expectedTokens: r.ctx + r.out };
    const p1 = placeHeads(req, a.state, a.disp);
    const p2 = placeHeads(req, state, disp);
    assert.equal(p1.ok, p2.ok);
    if (p1.ok && p2.ok) assert.ok(Math.abs(p1.layerSeconds - p2.layerSeconds) <= 1e-9 * p1.layerSeconds, `${p1.layerSeconds} vs ${p2.layerSeconds}`);
  }));
});

test('a faster device never gets fewer heads than a slower one with equal memory and link', () => {
  fc.assert(fc.property(fc.integer({ min: 10_000, max: 400_000 }), fc.constantFrom(12, 25), arbRequest, fc.boolean(), (cap, link, r, fastFirst) => {
    const pair = fastFirst ? [{ bw: 2000, cap, link }, { bw: 900, cap, link }] : [{ bw: 900, cap, link }, { bw: 2000, cap, link }];
    const { state, disp } = build([{ bw: 900, cap: 1000, link }, ...pair], []);
    const p = placeHeads({ id: 'x', kvHeads: 8, contextTokens: r.ctx, expectedTokens: r.ctx + r.out }, state, disp);
    if (!p.ok) return;
    const [fast, slow] = fastFirst ? [p.counts[1]!, p.counts[2]!] : [p.counts[2]!, p.counts[1]!];
    assert.ok(fast >= slow, `fast ${fast} < slow ${slow}`);
  }));
});

test('the greedy dispatcher is within 5% of the exact placement on small instances', () => {
  let worst = 0;
  fc.assert(fc.property(fc.array(arbDevice, { minLength: 1, maxLength: 5 }), fc.array(arbRequest, { maxLength: 20 }), arbRequest, fc.integer({ min: 1, max: 8 }), (devs, load, r, kv) => {
    const { state, disp } = build(devs, load, kv);
    const req: HeadRequest = { id: 'new', kvHeads: kv, contextTokens: r.ctx, expectedTokens: r.ctx + r.out };
    const g = placeHeads(req, state, disp);
    const e = placeHeadsExact(req, state, disp);
    assert.equal(g.ok, e.ok);
    if (g.ok && e.ok) {
      const gap = g.layerSeconds / e.layerSeconds - 1;
      worst = Math.max(worst, gap);
      assert.ok(gap <= 0.05, `greedy ${g.layerSeconds} vs exact ${e.layerSeconds} (${(gap * 100).toFixed(2)}%)`);
    }
  }), { numRuns: 300 });
});

test('after a device failure every affected head is re-homed or its request is recomputed', () => {
  fc.assert(fc.property(fc.array(arbDevice, { minLength: 2, maxLength: 8 }), fc.array(arbRequest, { minLength: 1, maxLength: 50 }), fc.nat(), (devs, load, pick) => {
    const { state, disp, cost } = build(devs, load);
    const f = pick % devs.length;
    const dead = setAlive(state, f, false);
    const plan = planMigrations(dead, disp, cost, { kind: 'failure', device: f });
    const after = applyMigrations(dead, plan.migrations);
    for (const r of after.requests) {
      if (plan.recompute.includes(r.id)) continue;
      assert.equal(r.counts[f], 0, `request ${r.id} still has heads on the failed device`);
      assert.equal(r.counts.reduce((a, c) => a + c, 0), 8);
    }
    for (const m of plan.migrations) assert.ok(m.rebuild && m.bytes === 0 && m.from === f && m.to !== f);
    const survivors = plan.recompute.reduce((s, id) => ({ ...s, requests: s.requests.filter((q) => q.id !== id) }), after);
    // Capacity holds on the live devices for what stays.
    survivors.devices.forEach((d, i) => {
      if (!d.alive) return;
      const reserved = survivors.requests.reduce((a, q) => a + q.counts[i]! * q.expectedTokens, 0);
      assert.ok(reserved <= d.capacity * (1 - state.reserve) + 1e-6);
    });
  }));
});

test('memory pressure moves heads off the device until it is under the target, and imbalance moves reduce the step time', () => {
  const { state, disp, cost } = build([{ bw: 2000, cap: 60_000, link: 25 }, { bw: 900, cap: 400_000, link: 25 }, { bw: 550, cap: 400_000, link: 25 }],
    Array.from({ length: 30 }, (_, i) => ({ ctx: 100 + i * 13, out: 200 })));
  const mem = planMigrations(state, disp, cost, { kind: 'memory', device: 0 }, { memoryTarget: 0.5, minGain: 0.01, maxMigrations: 1000 });
  const after = applyMigrations(state, mem.migrations);
  assert.ok(after.loads[0]!.reserved <= 0.5 * 60_000, `reserved ${after.loads[0]!.reserved}`);
  assert.ok(mem.migrations.every((m) => m.from === 0 && !m.rebuild && m.bytes > 0));
  checkCapacity(after);
  // Skew the load onto the slow device, then ask the re-dispatcher to balance.
  const skewed: ClusterState = { ...state, requests: state.requests.map((r) => ({ ...r, counts: [0, 0, 8] })) };
  const loads = [0, 1, 2].map((i) => ({
    reserved: skewed.requests.reduce((a, r) => a + r.counts[i]! * r.expectedTokens, 0),
    headTokens: skewed.requests.reduce((a, r) => a + r.counts[i]! * r.contextTokens, 0),
    heads: skewed.requests.reduce((a, r) => a + r.counts[i]!, 0),
  }));
  const s2 = { ...skewed, loads, devices: skewed.devices.map((d) => ({ ...d, capacity: 1e7 })) };
  const imb = planMigrations(s2, disp, cost, { kind: 'imbalance' });
  assert.ok(imb.migrations.length > 0);
  assert.ok(imb.layerSecondsAfter < imb.layerSecondsBefore * 0.9, `${imb.layerSecondsBefore} -> ${imb.layerSecondsAfter}`);
  assert.ok(Math.abs(batchLayerTime(applyMigrations(s2, imb.migrations), disp) - imb.layerSecondsAfter) < 1e-12);
});

test('re-dispatch trigger: a device past its memory watermark first, else imbalance held for the set number of steps', () => {
  const policy = { memoryWatermark: 0.9, imbalance: 0.5, imbalanceSteps: 3 };
  const roomy = [{ used: 10, total: 100 }, { used: 90, total: 100 }]; // at the watermark, not past it
  const balanced = [1e-3, 1.2e-3];
  const skewed = [1e-3, 2.5e-3]; // max / mean - 1 = 0.43: under the threshold
  const worse = [1e-3, 4e-3];
  assert.deepEqual(redispatchTrigger(roomy, balanced, policy, 2), { streak: 0 });
  assert.deepEqual(redispatchTrigger(roomy, skewed, policy, 2), { streak: 0 });
  assert.deepEqual(redispatchTrigger(roomy, worse, policy, 0), { streak: 1 });
  assert.deepEqual(redispatchTrigger(roomy, worse, policy, 1), { streak: 2 });
  assert.deepEqual(redispatchTrigger(roomy, worse, policy, 2), { trigger: { kind: 'imbalance' }, streak: 0 });
  // Memory comes first and leaves the imbalance streak as it was.
  const full = [{ used: 10, total: 100 }, { used: 91, total: 100 }];
  assert.deepEqual(redispatchTrigger(full, worse, policy, 2), { trigger: { kind: 'memory', device: 1 }, streak: 2 });
  // A device with no blocks never counts as full; fewer than two devices with work: no imbalance.
  assert.deepEqual(redispatchTrigger([{ used: 0, total: 0 }, { used: 5, total: 100 }], [0, 4e-3], policy, 2), { streak: 0 });
});
