// The runtime step cost's cold steps, frees, engine work and dense work inside steps: the profiled wake-up after an idle
// (interpolated in log idle), the extra of decode steps after a prefill, round trips to free KV
// on attention devices, the engine's own time between steps in the issue interval (not the
// latency); the engine tells the step how long it idled, how many steps ago the last prefill
// was and where the KV it frees was, on whatever clock it is given; serving's events (admissions
// and finishes after their step, arrivals in the step they land in) on the simulated clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProfiledCostModel, modelShape } from '../src/cost/profiled.js';
import type { DeviceProfile } from '../src/cost/profile-types.js';
import { createRooflineCostModel } from '../src/cost/roofline.js';
import { FP32 } from '../src/cost/types.js';
import { Engine } from '../src/engine/engine.js';
import { stepCost, type StepShape } from '../src/engine/step-cost.js';
import type { Executor, StepPlan, StepResult } from '../src/engine/types.js';
import { localEngineConfig } from '../src/runtime/local-devices.js';
import { runEngines } from '../src/sim/simulate.js';
import type { ModelSpec } from '../src/model/spec.js';

const spec: ModelSpec = {
  name: 'tiny', nLayers: 2, dim: 64, nHeads: 4, nKvHeads: 2, headDim: 16, ffnDim: 128, vocabSize: 256,
  contextLength: 128, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
};
const device = { name: 'cpu-test', kind: 'cpu' as const, peakFlops: 50e9, memoryBytes: 1e9, memoryBandwidth: 20e9, computeEfficiency: 1, memoryEfficiency: 1, kernelOverhead: 0, defaultIntraLink: 'loopback' as const };
const profile: DeviceProfile = {
  device: device.name, model: modelShape(spec), precision: FP32,
  dense: [{ op: 'qkv', tp: 1, tokens: [1, 64], seconds: [1e-5, 1e-4] }],
  coldSteps: { idle: [0.001, 0.1], wake: [2e-4, 8e-4], afterPrefill: [3e-4, 1e-4] },
  engineStep: { fixed: 5e-5, perSequence: 1e-5, afterPrefill: [4e-5, 2e-5] },
};
const cost = createProfiledCostModel(createRooflineCostModel(spec, FP32), [profile]);

const PROFILE_FILE = (p: DeviceProfile): Parameters<typeof localEngineConfig>[3] => ({
  profile: { format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device], profiles: [p], links: [] },
});

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} != ${b}`);
}

test('cold steps: wake-up linear in log idle between the measured idles, none below, the longest beyond; after-prefill by steps since', () => {
  close(cost.coldStep!(device, 0, undefined), 0, 'back to back');
  close(cost.coldStep!(device, 0.0009, undefined), 0, 'below the shortest idle');
  close(cost.coldStep!(device, 0.001, undefined), 2e-4, 'shortest');
  close(cost.coldStep!(device, 0.01, undefined), 5e-4, 'halfway in log idle');
  close(cost.coldStep!(device, 10, undefined), 8e-4, 'beyond the longest');
  close(cost.coldStep!(device, Infinity, undefined), 8e-4, 'the first step');
  close(cost.coldStep!(device, 0, 0), 3e-4, 'right after a prefill');
  close(cost.coldStep!(device, 0.01, 1), 5e-4 + 1e-4, 'both');
  close(cost.coldStep!(device, 0, 2), 0, 'past the measured steps');
  close(cost.engineStep!(device, 4), 5e-5 + 4e-5, 'engine step');
  close(cost.engineStep!(device, 4, 0), 5e-5 + 4e-5 + 4e-5, 'engine step right after a prefill');
  close(cost.engineStep!(device, 4, 1), 5e-5 + 4e-5 + 2e-5, 'the one after');
  close(cost.engineStep!(device, 4, 2), 5e-5 + 4e-5, 'past the measured steps');
});

test('runtime step: the cold extra is in the latency (after-prefill only for decode steps), the engine work only in the interval', () => {
  const cfg = localEngineConfig(spec, [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }], [], { profile: { format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device], profiles: [profile], links: [] } });
  const shape = (o: Partial<StepShape>): StepShape => ({
    prefill: [], decodeTokens: 2, sampledRows: 2, decodeHeads: [4], decodeHeadTokens: [80], shippedHeadTokens: [0], migratedHeadTokens: [0], ...o,
  });
  const warm = stepCost(cfg.cost, cfg.stages, cfg.devices, shape({ idle: 0 }));
  close(warm.parts['cold']!, 0, 'warm');
  close(warm.interval - warm.seconds, 5e-5 + 2 * 1e-5, 'engine work after the step');
  const after = stepCost(cfg.cost, cfg.stages, cfg.devices, shape({ idle: 0, sincePrefill: 0 }));
  close(after.seconds - warm.seconds, 3e-4, 'decode step after a prefill');
  close(after.interval - after.seconds, 5e-5 + 2 * 1e-5 + 4e-5, 'the engine\'s work after it, cold too');
  const woken = stepCost(cfg.cost, cfg.stages, cfg.devices, shape({ idle: 0.1 }));
  close(woken.seconds - warm.seconds, 8e-4, 'after 100 ms idle');
  const prefill = stepCost(cfg.cost, cfg.stages, cfg.devices, shape({ prefill: [{ tokens: 8, context: 0 }], idle: 0, sincePrefill: 0 }));
  close(prefill.parts['cold']!, 0, 'a step with prefill pays no after-prefill extra');
  close(prefill.interval - prefill.seconds, 5e-5 + 3 * 1e-5, 'nor does the engine after it');
});

test('runtime step: freeing KV on attention devices costs a round trip each before the step (in parallel), on the primary nothing', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }, { id: 'a2', primary: false, kvCapacityBytes: 1 << 20 }];
  const cfg = localEngineConfig(spec, devices, []);
  const shape = (freed: number[]): StepShape => ({
    prefill: [], decodeTokens: 1, sampledRows: 1, decodeHeads: [2, 0, 0], decodeHeadTokens: [40, 0, 0], shippedHeadTokens: [0, 0, 0], migratedHeadTokens: [0, 0, 0], freedRequests: freed,
  });
  const rt = cfg.cost.sendRecv(cfg.devices[1]!.link, 64).seconds + cfg.cost.sendRecv(cfg.devices[1]!.link, 96).seconds;
  close(stepCost(cfg.cost, cfg.stages, cfg.devices, shape([3, 0, 0])).parts['free']!, 0, 'primary only');
  close(stepCost(cfg.cost, cfg.stages, cfg.devices, shape([1, 2, 0])).parts['free']!, rt, 'one attention device');
  close(stepCost(cfg.cost, cfg.stages, cfg.devices, shape([0, 1, 1])).parts['free']!, 1.5 * rt, 'two, in parallel on shared cores');
});

test('runtime step: each sequence adds its share to the step message and to the attend calls of the devices holding its heads', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }];
  const withMessages = (m: { step: number; attend: number } | undefined): ReturnType<typeof localEngineConfig> => localEngineConfig(spec, devices, [], {
    profile: {
      format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device],
      profiles: [{ ...profile, ...(m !== undefined ? { messagePerSequence: m } : {}) }], links: [],
    },
  });
  const shape: StepShape = { prefill: [], decodeTokens: 3, sampledRows: 3, decodeHeads: [4, 2], decodeHeadTokens: [80, 40], shippedHeadTokens: [0, 0], migratedHeadTokens: [0, 0] };
  const plain = withMessages(undefined), priced = withMessages({ step: 1e-5, attend: 2e-5 });
  const a = stepCost(plain.cost, plain.stages, plain.devices, shape), b = stepCost(priced.cost, priced.stages, priced.devices, shape);
  close(b.parts['engine_messages']! - a.parts['engine_messages']!, 3 * 1e-5, 'three sequences in the step message');
  // Two (request, head) pairs on a1: at most two sequences there, in each layer's attend call
  // (the shared-core sum: the primary's and a1's attention add up, and so do the messages).
  close(b.parts['attention']! - a.parts['attention']!, spec.nLayers * 2 * 2e-5, 'two sequences per attend call');
});

test('runtime step: the primary\'s decode attention in a step adds the profile\'s in-step cost per head and per head-token; an attention worker\'s does not', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }];
  const withInStep = (e: DeviceProfile['attentionInStep']): ReturnType<typeof localEngineConfig> => localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, ...(e !== undefined ? { attentionInStep: e } : {}) }));
  const plain = withInStep(undefined), cold = withInStep({ perHead: 5e-7, perHeadToken: 1e-8 });
  assert.deepEqual(cold.cost.attentionInStep!(device), { perHead: 5e-7, perHeadToken: 1e-8 }, 'read from the profile');
  // A profile written before the per-head part: its number is the per-head-token part alone.
  assert.deepEqual(withInStep(1e-8).cost.attentionInStep!(device), { perHead: 0, perHeadToken: 1e-8 });
  assert.throws(() => withInStep({ perHead: Number.NaN, perHeadToken: 0 }), /attention in step/);
  const shape = (heads: number[], headTokens: number[]): StepShape => ({
    prefill: [], decodeTokens: 2, sampledRows: 2, decodeHeads: heads, decodeHeadTokens: headTokens, shippedHeadTokens: [0, 0], migratedHeadTokens: [0, 0],
  });
  const local = shape([4, 0], [400, 0]), remote = shape([0, 4], [0, 400]);
  const att = (cfg: ReturnType<typeof localEngineConfig>, s: StepShape): number => stepCost(cfg.cost, cfg.stages, cfg.devices, s).parts['attention']!;
  close(att(cold, local) - att(plain, local), spec.nLayers * (4 * 5e-7 + 400 * 1e-8), 'every layer, every head and head-token on the primary');
  close(att(cold, remote), att(plain, remote), 'heads on an attention worker');
  // A negative per-head part (the table reading high) never takes the attention below nothing.
  const under = withInStep({ perHead: -1, perHeadToken: 0 });
  assert.equal(att(under, local) >= 0 && att(under, local) < att(plain, local), true);
});

test('runtime step: the primary\'s prefill attention in a step is its table times the profile\'s factor at the step\'s prompt tokens; an attention worker\'s is not', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }];
  const prefillAttention = { tokens: [8, 64, 256], seconds: [1e-5, 1e-4, 1e-3] };
  const withFactor = (f: DeviceProfile['prefillAttentionInStep']): ReturnType<typeof localEngineConfig> =>
    localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, prefillAttention, ...(f !== undefined ? { prefillAttentionInStep: f } : {}) }));
  const plain = withFactor(undefined), inStep = withFactor({ tokens: [32, 128], factor: [1.5, 1.1] });
  close(inStep.cost.prefillAttentionInStep!(device, 16), 1.5, 'below the first chunk: its factor');
  close(inStep.cost.prefillAttentionInStep!(device, 80), 1.3, 'between two chunks');
  close(inStep.cost.prefillAttentionInStep!(device, 200), 1.1, 'above the last chunk: its factor');
  const shape = (tokens: number, shipped: number[]): StepShape => ({
    prefill: [{ tokens, context: 0 }], decodeTokens: 0, sampledRows: 1, decodeHeads: [0, 0], decodeHeadTokens: [0, 0], shippedHeadTokens: shipped, migratedHeadTokens: [0, 0],
  });
  const att = (cfg: ReturnType<typeof localEngineConfig>, s: StepShape): number => stepCost(cfg.cost, cfg.stages, cfg.devices, s).parts['attention']!;
  const local = shape(32, [0, 0]);
  close(att(inStep, local), 1.5 * att(plain, local), 'every head on the primary');
  // Every head on a1: its prefill attention is a1's, with the q/k/v shipped (no factor).
  const remote = shape(32, [0, 32 * spec.nKvHeads]);
  close(att(inStep, remote), att(plain, remote), 'heads on an attention worker');
  assert.throws(() => withFactor({ tokens: [64, 32], factor: [1, 1] }), /prefill attention in step/);
});

test('runtime step: a migrated head costs its measured time, adjusted for its bytes crossing the link twice; a step that migrates, its once more', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }];
  const measured = { perHead: 4e-4, bytes: 4096 };
  const cfg = localEngineConfig(spec, devices, [], {
    profile: {
      format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device],
      profiles: [{ ...profile, migration: measured }], links: [],
    },
  });
  const perHeadToken = cfg.cost.kvBytesPerHeadToken();
  const shape = (tokens: number): StepShape => ({
    prefill: [], decodeTokens: 1, sampledRows: 1, decodeHeads: [2, 0], decodeHeadTokens: [40, 0], shippedHeadTokens: [0, 0],
    migratedHeadTokens: [0, 2 * tokens], migratedHeads: [0, 2],
  });
  const atMeasured = measured.bytes / perHeadToken;
  close(stepCost(cfg.cost, cfg.stages, cfg.devices, shape(atMeasured)).parts['migration']!, 2 * 4e-4, 'two heads of the measured size');
  const link = cfg.devices[1]!.link;
  const bigger = stepCost(cfg.cost, cfg.stages, cfg.devices, shape(4 * atMeasured)).parts['migration']!;
  close(bigger, 2 * (4e-4 + 2 * (cfg.cost.sendRecv(link, 4 * measured.bytes).seconds - cfg.cost.sendRecv(link, measured.bytes).seconds)), 'four times the bytes');
  // A profile that measured the step's once: added once to a step that migrates, never to one that does not.
  const withStep = localEngineConfig(spec, devices, [], {
    profile: {
      format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device],
      profiles: [{ ...profile, migration: { ...measured, perStep: 7e-4 } }], links: [],
    },
  });
  close(stepCost(withStep.cost, withStep.stages, withStep.devices, shape(atMeasured)).parts['migration']!, 7e-4 + 2 * 4e-4, 'once and two heads');
  const none = { ...shape(0), migratedHeadTokens: [0, 0], migratedHeads: [0, 0] };
  assert.equal(stepCost(withStep.cost, withStep.stages, withStep.devices, none).parts['migration'], 0);
});

test('runtime step: rows drawn with a temperature cost the profile\'s sampling beyond greedy, by the sampler\'s path; greedy rows nothing', () => {
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }];
  const cfg = localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, sampling: { plain: 5e-5, truncated: 8e-5 } }));
  const shape = (sampledBy?: { plain: number; truncated: number }): StepShape => ({
    prefill: [], decodeTokens: 4, sampledRows: 4, decodeHeads: [8], decodeHeadTokens: [160], shippedHeadTokens: [0], migratedHeadTokens: [0], ...(sampledBy ? { sampledBy } : {}),
  });
  const greedy = stepCost(cfg.cost, cfg.stages, cfg.devices, shape());
  const mixed = stepCost(cfg.cost, cfg.stages, cfg.devices, shape({ plain: 2, truncated: 1 }));
  assert.equal(greedy.parts['sampling'], 0);
  close(mixed.parts['sampling']!, 2 * 5e-5 + 8e-5, 'two plain rows and one truncated');
  close(mixed.seconds - greedy.seconds, 2 * 5e-5 + 8e-5, 'and nothing else moves');
  // A profile without the measurement charges nothing.
  const bare = localEngineConfig(spec, devices, [], PROFILE_FILE(profile));
  assert.equal(stepCost(bare.cost, bare.stages, bare.devices, shape({ plain: 2, truncated: 1 })).parts['sampling'], 0);
});

test('the engine counts each step\'s sampled rows by how they are drawn', async () => {
  const cfg = localEngineConfig(spec, [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }], []);
  const rec = new Recorder();
  const engine = new Engine(cfg, rec);
  const prompt = [1, 2, 3, 4];
  engine.submit({ id: 'g', arrival: 0, promptTokens: prompt, promptLength: 4, maxTokens: 2 });
  engine.submit({ id: 't', arrival: 0, promptTokens: prompt, promptLength: 4, maxTokens: 2, sampling: { temperature: 0.8, topK: 0, topP: 1, seed: 1 } });
  engine.submit({ id: 'p', arrival: 0, promptTokens: prompt, promptLength: 4, maxTokens: 2, sampling: { temperature: 0.8, topK: 0, topP: 0.9, seed: 2 } });
  let t = 0;
  while (engine.hasWork()) { const dt = await engine.step(t); t += dt!; }
  assert.ok(rec.shapes.length > 0);
  for (const s of rec.shapes) {
    assert.equal(s.sampledRows, 3);
    assert.deepEqual(s.sampledBy, { plain: 1, truncated: 1 });
  }
});

test('dense work in a step: the profile\'s factor at the step\'s rows, local and remote mixed by the primary\'s share of the attention', () => {
  const withFactor: DeviceProfile = { ...profile, denseInStep: { tokens: [1, 16, 64], local: [1.2, 1.1, 1.3], remote: [1.0, 1.0, 1.1] } };
  const c = createProfiledCostModel(createRooflineCostModel(spec, FP32), [withFactor]);
  close(c.denseInStep!(device, 1, 1), 1.2, 'local at a grid point');
  close(c.denseInStep!(device, 1, 0), 1.0, 'remote at a grid point');
  close(c.denseInStep!(device, 40, 1), 1.2, 'local between 16 and 64');
  close(c.denseInStep!(device, 16, 0.5), 1.05, 'half the attention local');
  close(c.denseInStep!(device, 500, 0), 1.1, 'beyond the grid: its last point');
  close(cost.denseInStep!(device, 8, 1), 1, 'no measurement: 1');
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }, { id: 'a1', primary: false, kvCapacityBytes: 1 << 20 }];
  const file = (p: DeviceProfile): Parameters<typeof localEngineConfig>[3] => ({ profile: { format: 'hetis-profile', version: 1, createdAt: '', machine: { cpu: '', cores: 2, memoryBytes: 0, node: '', kernels: '', clock: 'cpu' }, devices: [device], profiles: [p], links: [] } });
  const plain = localEngineConfig(spec, devices, [], file(profile));
  const factored = localEngineConfig(spec, devices, [], file(withFactor));
  const shape = (heads: number[]): StepShape => ({
    prefill: [], decodeTokens: 1, sampledRows: 1, decodeHeads: heads, decodeHeadTokens: heads.map((h) => 40 * h), shippedHeadTokens: [0, 0], migratedHeadTokens: [0, 0], idle: 0,
  });
  for (const [heads, factor] of [[[2, 0], 1.2], [[0, 2], 1.0], [[1, 1], 1.1]] as const) {
    const a = stepCost(plain.cost, plain.stages, plain.devices, shape([...heads]));
    const b = stepCost(factored.cost, factored.stages, factored.devices, shape([...heads]));
    close(b.parts['dense']!, a.parts['dense']! * factor, `dense, heads ${heads.join('/')}`);
    close(b.parts['lm_head']!, a.parts['lm_head']! * factor, `LM head, heads ${heads.join('/')}`);
    close(b.parts['attention']!, a.parts['attention']!, 'attention unchanged');
  }
});

class Recorder implements Executor {
  shapes: StepShape[] = [];
  execute(step: StepPlan): Promise<StepResult> {
    this.shapes.push(step.shape);
    const sampled: Record<string, number> = {};
    for (const c of step.chunks) if (c.sample) sampled[c.request] = 7;
    return Promise.resolve({ sampled, seconds: 0.001 });
  }
}

test('the engine tells each step its idle time and the steps since the last prefill', async () => {
  const cfg = localEngineConfig(spec, [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }], []);
  const rec = new Recorder();
  const engine = new Engine(cfg, rec);
  const prompt = [1, 2, 3, 4];
  engine.submit({ id: 'a', arrival: 0, promptTokens: prompt, promptLength: 4, maxTokens: 3 });
  // The first step: the engine never stepped before.
  let t = 0;
  while (engine.hasWork()) { const dt = await engine.step(t); t += dt!; }
  engine.submit({ id: 'b', arrival: t + 0.05, promptTokens: prompt, promptLength: 4, maxTokens: 2 });
  t += 0.05;
  while (engine.hasWork()) { const dt = await engine.step(t); t += dt! + 0.0001; }
  const view = rec.shapes.map((s) => [s.prefill.length > 0 ? 'P' : 'D', s.idle, s.sincePrefill]);
  // b's first step also frees a's KV, which was on the primary.
  assert.deepEqual(rec.shapes.map((s) => s.freedRequests), [[0], [0], [0], [1], [0]]);
  assert.equal(view[0]![1], Infinity);
  assert.deepEqual(view.slice(1, 3), [['D', 0, 0], ['D', 0, 1]]);
  assert.equal(view[3]![0], 'P');
  close(view[3]![1] as number, 0.05, 'idle before b');
  assert.equal(view[3]![2], 2);
  assert.deepEqual(view[4]!.slice(0, 1), ['D']);
  close(view[4]![1] as number, 0.0001, 'a small gap');
  assert.equal(view[4]![2], 0);
});

test('serving events: an admission and every step\'s serving work add to the interval after the step, not to its latency', () => {
  const serving = { admitted: 1e-3, finished: 2e-3, arrival: 4e-3, samples: { none: 9, admitted: 9, finished: 9, arrival: 9 } };
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }];
  const cfg = localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, serving }));
  const shape = (admitted: number): StepShape => ({
    prefill: [{ tokens: 8, context: 0 }], decodeTokens: 1, sampledRows: 2, decodeHeads: [2], decodeHeadTokens: [40], shippedHeadTokens: [0], migratedHeadTokens: [0], idle: 0, admitted,
  });
  const none = stepCost(cfg.cost, cfg.stages, cfg.devices, shape(0)), two = stepCost(cfg.cost, cfg.stages, cfg.devices, shape(2));
  close(two.seconds, none.seconds, 'latency');
  close(two.interval - none.interval, 2e-3, 'two admissions');
  // A profile with the per-step serving work (older ones have none): every step's interval, not its latency.
  const withStep = localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, serving: { ...serving, step: 3e-5 } }));
  const stepped = stepCost(withStep.cost, withStep.stages, withStep.devices, shape(0));
  close(stepped.seconds, none.seconds, 'latency with the per-step work');
  close(stepped.interval - none.interval, 3e-5, 'the per-step work');
});

test('serving events on the simulated clock: admissions and finishes after their step, an arrival after the step it lands in', async () => {
  const serving = { admitted: 1e-3, finished: 2e-3, arrival: 4e-3, samples: { none: 9, admitted: 9, finished: 9, arrival: 9 } };
  const devices = [{ id: 'primary', primary: true, kvCapacityBytes: 1 << 20 }];
  const plain = localEngineConfig(spec, devices, [], PROFILE_FILE(profile));
  const served = localEngineConfig(spec, devices, [], PROFILE_FILE({ ...profile, serving }));
  const run = async (cfg: typeof plain, reqs: { id: string; arrival: number; maxTokens: number }[]) => {
    const { records } = await runEngines([cfg], reqs.map((r) => ({ ...r, promptLength: 8 })));
    return new Map(records.map((r) => [r.id, r]));
  };
  // One request: its admission delays its second token onwards, nothing else.
  const one = [{ id: 'a', arrival: 0, maxTokens: 3 }];
  const [a0, a1] = [(await run(plain, one)).get('a')!, (await run(served, one)).get('a')!];
  close(a1.firstTokenAt! - a0.firstTokenAt!, 0, 'first token');
  close(a1.finishedAt - a0.finishedAt, 1e-3, 'one admission');
  // Two admitted in the first step; the short one's finish delays the long one's later tokens.
  const two = [{ id: 's', arrival: 0, maxTokens: 2 }, { id: 'l', arrival: 0, maxTokens: 5 }];
  const [p2, s2] = [await run(plain, two), await run(served, two)];
  close(s2.get('s')!.finishedAt - p2.get('s')!.finishedAt, 2e-3, 'two admissions');
  close(s2.get('l')!.finishedAt - p2.get('l')!.finishedAt, 2e-3 + 2e-3, 'two admissions and a finish');
  // A request arriving while the first one's prefill runs: that step ends later by the
  // arrival's handling, and the next step (admitting it) by its admission after it.
  const prefill = a0.firstTokenAt!;
  const landed = [{ id: 'a', arrival: 0, maxTokens: 2 }, { id: 'b', arrival: prefill / 2, maxTokens: 2 }];
  const [p3, s3] = [await run(plain, landed), await run(served, landed)];
  close(s3.get('a')!.finishedAt - p3.get('a')!.finishedAt, 1e-3 + 4e-3, 'admission and arrival before the second step');
  close(s3.get('b')!.arrival, p3.get('b')!.arrival, 'arrival times are the trace\'s');
});
