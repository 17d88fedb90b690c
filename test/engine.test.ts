// The engine: exact scheduling examples (chunks, block ids, preemption order), memory pressure
// with every request completing, and determinism, through the simulated executor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type EngineConfig } from '../src/engine/engine.js';
import { Sequence } from '../src/engine/sequence.js';
import { describeStep } from '../src/engine/step-shape.js';
import type { EngineRequest, Executor, StepPlan, StepResult } from '../src/engine/types.js';
import { createRooflineCostModel } from '../src/cost/roofline.js';
import { FP16 } from '../src/cost/types.js';
import { getDevice, getLink } from '../src/hardware/catalog.js';
import type { ModelSpec } from '../src/model/spec.js';
import { SimulatedExecutor } from '../src/sim/executor.js';
import { runEngines } from '../src/sim/simulate.js';

const MODEL: ModelSpec = { name: 'tiny', nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, dim: 32, ffnDim: 64, vocabSize: 100, contextLength: 512, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true };
const cost = createRooflineCostModel(MODEL, FP16);
const a100 = getDevice('A100-80GB');

function config(capacities: number[], over: Partial<EngineConfig> = {}): EngineConfig {
  return {
    cost, stages: [{ spec: a100, tp: 1, layers: 2, hostLink: getLink('nvlink-a100') }],
    devices: capacities.map((c, i) => ({ id: i === 0 ? 'primary' : `w${i}`, spec: i === 0 ? a100 : getDevice('P100-12GB'), primary: i === 0, link: getLink('eth100'), alive: true, capacity: c })),
    blockSize: 4, tokenBudget: 8, maxRunning: 4, expectedOutput: 4, reserve: 0, eosIds: [2], placement: 'cost', pipeline: true,
    redispatch: { enabled: false, memoryWatermark: 0.98, imbalance: 0.25, imbalanceSteps: 16 },
    ...over,
  };
}

/** Records every step plan and answers like the simulated executor. */
class Recorder implements Executor {
  plans: StepPlan[] = [];
  constructor(private readonly inner: Executor) {}
  execute(step: StepPlan): Promise<StepResult> {
    this.plans.push(structuredClone(step));
    return this.inner.execute(step);
  }
}

const req = (id: string, prompt: number, output: number, arrival = 0): EngineRequest => ({ id, arrival, promptLength: prompt, maxTokens: 64, outputLength: output });

test('a step: decodes first, then prefill chunks, then admissions in arrival order within the token budget; exact block ids', async () => {
  const cfg = config([64]);
  const outputs = new Map([['a', 2], ['b', 2], ['c', 2]]);
  const rec = new Recorder(new SimulatedExecutor(cost, cfg.stages, cfg.devices, outputs));
  const engine = new Engine(cfg, rec);
  engine.submit(req('a', 6, 2));
  engine.submit(req('b', 5, 2));
  engine.submit(req('c', 3, 2));
  await engine.step(0);
  // Budget 8: a's whole prompt (6) and 2 of b's 5; c waits (budget spent).
  assert.deepEqual(rec.plans[0]!.chunks.map((c) => [c.request, c.start, c.count, c.sample]), [['a', 0, 6, true], ['b', 0, 2, false]]);
  // Blocks of 4 positions per KV head: a (6 positions) has 2 per head, then b (5) 2 per head.
  assert.deepEqual(engine.blockTable('a'), [{ head: 0, device: 'primary', blocks: [0, 1] }, { head: 1, device: 'primary', blocks: [2, 3] }]);
  assert.deepEqual(engine.blockTable('b'), [{ head: 0, device: 'primary', blocks: [4, 5] }, { head: 1, device: 'primary', blocks: [6, 7] }]);
  await engine.step(1);
  // a decodes its first token (position 6); b finishes its prompt (3 more); c is admitted with 3.
  assert.deepEqual(rec.plans[1]!.chunks.map((c) => [c.request, c.start, c.count, c.sample]), [['a', 6, 1, true], ['b', 2, 3, true], ['c', 0, 3, true]]);
  assert.deepEqual(engine.blockTable('c'), [{ head: 0, device: 'primary', blocks: [8] }, { head: 1, device: 'primary', blocks: [9] }]);
  while (engine.hasWork()) await engine.step(2);
  assert.deepEqual(engine.records.map((r) => [r.id, r.outputLength, r.finishReason]).sort(), [['a', 2, 'stop'], ['b', 2, 'stop'], ['c', 2, 'stop']]);
  assert.deepEqual(engine.kvUsage(), [{ id: 'primary', used: 0, free: 16 }]);
});

test('when KV runs out the newest running request is preempted, recomputed later, and every request completes', async () => {
  // 2 heads x blocks of 4: 12 blocks hold 24 positions per head... two requests of 8 + growth collide.
  const cfg = config([48], { expectedOutput: 1, tokenBudget: 64 });
  const outputs = new Map([['old', 12], ['new', 12]]);
  const rec = new Recorder(new SimulatedExecutor(cost, cfg.stages, cfg.devices, outputs));
  const engine = new Engine(cfg, rec);
  engine.submit(req('old', 8, 12));
  engine.submit(req('new', 8, 12, 0.001));
  let t = 0;
  while (engine.hasWork()) t += (await engine.step(t)) ?? 0;
  const byId = Object.fromEntries(engine.records.map((r) => [r.id, r]));
  assert.equal(byId['old']!.outputLength, 12);
  assert.equal(byId['new']!.outputLength, 12);
  assert.equal(byId['old']!.preemptions, 0, 'the oldest request keeps running');
  assert.ok(byId['new']!.preemptions >= 1, 'the newest request was preempted');
  // The preempted request is later re-prefilled from position 0 with its generated tokens included.
  const again = rec.plans.flatMap((p) => p.chunks).filter((c) => c.request === 'new' && c.start === 0);
  assert.equal(again.length, 2);
  assert.ok(again[1]!.count > 8, `recompute covers prompt and generated tokens: ${again[1]!.count}`);
});

test('heads go to attention workers when the primary is short of KV; the step ships their KV', async () => {
  const cfg = config([8, 400]);
  const rec = new Recorder(new SimulatedExecutor(cost, cfg.stages, cfg.devices, new Map([['x', 3]])));
  const engine = new Engine(cfg, rec);
  engine.submit(req('x', 12, 3));
  await engine.step(0);
  const table = engine.blockTable('x');
  assert.ok(table.some((h) => h.device === 'w1'), JSON.stringify(table));
  assert.ok(rec.plans[0]!.shape.shippedHeadTokens[1]! > 0);
  assert.ok(rec.plans[0]!.predicted.parts['kv_shipping']! > 0);
});

test('a request that fits nowhere is dropped with an error record, and the rest go on', async () => {
  const cfg = config([16]); // 'ok' reserves 2 heads x (4 + 4) head-tokens = 16
  const { records } = await runEngines([cfg], [req('huge', 200, 1), req('ok', 4, 2, 1)]);
  assert.deepEqual(records.map((r) => [r.id, r.finishReason]), [['huge', 'error'], ['ok', 'stop']]);
});

test('same requests, same results, bit for bit', async () => {
  const cfg = config([40, 200, 120], { expectedOutput: 8, redispatch: { enabled: true, memoryWatermark: 0.9, imbalance: 0.1, imbalanceSteps: 2 } });
  const reqs = Array.from({ length: 40 }, (_, i) => req(`r${i}`, 3 + ((i * 7) % 23), 1 + ((i * 5) % 17), i * 0.0005));
  const a = await runEngines([cfg], reqs);
  const b = await runEngines([cfg], reqs);
  assert.deepEqual(a, b);
  assert.equal(a.records.filter((r) => r.finishReason === 'stop').length, 40);
});

test('a pipelined engine keeps one micro-batch per stage in flight: issued every busiest-stage time, tokens out after all stages', async () => {
  const first = { spec: a100, tp: 1, layers: 1, hostLink: getLink('nvlink-a100'), nextLink: getLink('pcie4') };
  const second = { spec: a100, tp: 1, layers: 1, hostLink: getLink('nvlink-a100') };
  const cfg = config([200], { stages: [first, second], tokenBudget: 8 });
  const rec = new Recorder(new SimulatedExecutor(cost, cfg.stages, cfg.devices, new Map([['a', 3], ['b', 3], ['c', 3], ['d', 3]])));
  const engine = new Engine(cfg, rec);
  for (const id of ['a', 'b', 'c', 'd']) engine.submit(req(id, 4, 3));
  let t = 0;
  while (engine.hasWork()) t += (await engine.step(t))!;
  // Two virtual engines take turns: a and b fill the first micro-batch's budget, c and d the second's.
  assert.deepEqual(rec.plans.slice(0, 4).map((p) => p.chunks.map((c) => `${c.request}@${c.start}`)), [
    ['a@0', 'b@0'], ['c@0', 'd@0'], ['a@4', 'b@4'], ['c@4', 'd@4'],
  ]);
  for (const p of rec.plans) assert.ok(p.predicted.interval < p.predicted.seconds, 'two stages: the interval is below the latency');
  // Step k is issued when step k-1's interval is over; a request's first token is out a latency after its step.
  engine.steps.forEach((s, k) => { if (k > 0) assert.ok(Math.abs(s.start - (engine.steps[k - 1]!.start + engine.steps[k - 1]!.interval)) < 1e-12); });
  const a = engine.records.find((r) => r.id === 'a')!;
  assert.ok(Math.abs(a.firstTokenAt! - engine.steps[0]!.seconds) < 1e-12);
  assert.ok(engine.records.every((r) => r.outputLength === 3 && r.finishReason === 'stop'));
});

test('history: a long-running engine keeps about the last N steps and records; listeners see every one', async () => {
  const cfg = config([256], { history: 3 });
  const outputs = new Map(Array.from({ length: 12 }, (_, i) => [`r${i}`, 3] as [string, number]));
  const seen: number[] = [];
  const finished: string[] = [];
  const engine = new Engine(cfg, new SimulatedExecutor(cost, cfg.stages, cfg.devices, outputs), { onStep: (s) => seen.push(s.index), onFinish: (r) => finished.push(r.id) });
  for (let i = 0; i < 12; i++) engine.submit(req(`r${i}`, 2, 3));
  for (let t = 0; engine.hasWork(); t++) await engine.step(t);
  assert.equal(finished.length, 12);
  assert.ok(seen.length > 6);
  assert.deepEqual(seen, seen.map((_, i) => i), 'every step, in order');
  assert.ok(engine.steps.length >= 3 && engine.steps.length <= 6, `kept ${engine.steps.length} steps`);
  assert.equal(engine.steps[engine.steps.length - 1]!.index, seen[seen.length - 1]);
  assert.ok(engine.records.length >= 3 && engine.records.length <= 6);
  // A harness that has read the history clears it; the engine goes on numbering and recording.
  engine.clearHistory();
  assert.deepEqual([engine.steps.length, engine.records.length], [0, 0]);
  engine.submit(req('later', 2, 3));
  for (let t = 100; engine.hasWork(); t++) await engine.step(t);
  assert.deepEqual(engine.records.map((r) => r.id), ['later']);
  assert.equal(engine.steps[0]!.index, seen[seen.length - engine.steps.length]);
});

test('describeStep: chunks, head devices and the shape the cost model prices, from the scheduled sequences alone', () => {
  const devices = config([1000, 1000]).devices;
  // A sequence decoding its 11th position, two heads on each device; one admitted with an 8-token prompt, three heads on the primary and one on w1.
  const decoding = new Sequence({ id: 'd', arrival: 0, promptLength: 8, maxTokens: 16, promptTokens: [1, 2, 3, 4, 5, 6, 7, 8], sampling: { temperature: 0.5, topK: 0, topP: 1, seed: 7 } }, 0);
  decoding.generated.push(9, 10, 11);
  decoding.computed = 10;
  decoding.counts = [2, 2];
  decoding.deviceIds = ['primary', 'primary', 'w1', 'w1'];
  const admitted = new Sequence({ id: 'p', arrival: 0, promptLength: 8, maxTokens: 16 }, 1);
  admitted.counts = [3, 1];
  admitted.deviceIds = ['primary', 'primary', 'primary', 'w1'];
  const ctx = { idle: 0.5, sincePrefill: 3, recentBusy: 0.25, migratedHeadTokens: [0, 7], migratedHeads: [0, 1], freedRequests: [1, 0] };
  const d = describeStep([{ seq: decoding, count: 1 }, { seq: admitted, count: 8 }], devices, ctx);
  assert.deepEqual(d.chunks, [
    { request: 'd', start: 10, count: 1, sample: true, tokens: [11], sampling: { temperature: 0.5, topK: 0, topP: 1, seed: 7 } },
    { request: 'p', start: 0, count: 8, sample: true },
  ]);
  assert.deepEqual(d.headDevices, { d: decoding.deviceIds, p: admitted.deviceIds });
  assert.deepEqual(d.shape, {
    prefill: [{ tokens: 8, context: 0 }], decodeTokens: 1, sampledRows: 2, sampledBy: { plain: 1, truncated: 0 }, // d draws with a temperature, p greedily
    decodeHeads: [2, 2], decodeHeadTokens: [22, 22], shippedHeadTokens: [0, 8],
    migratedHeadTokens: [0, 7], migratedHeads: [0, 1], freedRequests: [1, 0], idle: 0.5, recentBusy: 0.25, admitted: 1, sincePrefill: 3,
  });
  // Half a prompt: no row sampled, no admission once some of it is computed.
  admitted.computed = 4;
  const half = describeStep([{ seq: admitted, count: 2 }], devices, { ...ctx, sincePrefill: undefined });
  assert.deepEqual([half.shape.sampledRows, half.shape.admitted, half.shape.prefill, 'sincePrefill' in half.shape], [0, 0, [{ tokens: 2, context: 4 }], false]);
});
