// The distributed step logic with every worker in this process: heads split over three devices,
// tensor parallelism (TP=2), pipeline stages (PP=2), and a forced migration mid-generation all
// give the same greedy tokens as the single-process engine (LocalExecutor).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type EngineConfig } from '../src/engine/engine.js';
import type { ModelSpec } from '../src/model/spec.js';
import type { LoadedModel } from '../src/model/weights.js';
import { loadLlama2c } from '../src/model/llama2c.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { LocalExecutor } from '../src/runtime/local-executor.js';
import { localEngineConfig } from '../src/runtime/local-devices.js';
import { layoutAssignments, layoutDevices, type ClusterLayout } from '../src/runtime/cluster-layout.js';
import { ClusterExecutor } from '../src/runtime/cluster-executor.js';
import { inProcessCluster } from '../src/runtime/in-process-cluster.js';
import { HeadKv } from '../src/runtime/head-kv.js';
import { runToEnd } from './helpers/engine-run.js';
import { randomModel } from './helpers/random-model.js';
import { missingShared, stories260K } from './helpers/shared.js';

const GQA: ModelSpec = {
  name: 'random-gqa', nLayers: 4, nHeads: 8, nKvHeads: 4, headDim: 6, dim: 40, ffnDim: 72,
  vocabSize: 61, contextLength: 128, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};

const kernels = getKernels('auto');

function prompts(spec: ModelSpec): number[][] {
  return [0, 1, 2, 3, 4].map((s) => Array.from({ length: 5 + s * 7 }, (_, i) => 1 + ((i * 11 + s * 5) % (spec.vocabSize - 1))));
}

const run = runToEnd;

function layout(tp: number, stages: number, primaryBytes = 1 << 20): ClusterLayout {
  return {
    primary: { id: 'primary', tp, stages, kvCapacityBytes: primaryBytes },
    attention: [{ id: 'attn-a', kvCapacityBytes: 2 << 20 }, { id: 'attn-b', kvCapacityBytes: 1 << 20 }],
    blockSize: 8,
  };
}

async function compare(model: LoadedModel, l: ClusterLayout, during?: (engine: Engine, step: number) => void): Promise<void> {
  const spec = model.spec;
  const reqs = prompts(spec);
  const single = localEngineConfig(spec, [{ id: 'local', primary: true, kvCapacityBytes: 64 << 20 }], [], { tuning: { blockSize: 8, tokenBudget: 24, maxRunning: 8, expectedOutput: 16, reserve: 0, redispatch: { enabled: false, memoryWatermark: 1, imbalance: 1, imbalanceSteps: 1 } } });
  const want = await run(single, new LocalExecutor(model, kernels), reqs, 12);
  // Heads split by memory over the three devices (the cost model would keep them on the primary here).
  const config: EngineConfig = { ...localEngineConfig(spec, layoutDevices(l), [], { tp: l.primary.tp, stages: l.primary.stages }), placement: 'memory', tokenBudget: 24, blockSize: 8 };
  config.redispatch = { ...config.redispatch, enabled: false };
  const handles = inProcessCluster(model, layoutAssignments(spec, l), kernels);
  const holding = new Set<string>();
  const got = await run(config, new ClusterExecutor(spec, handles), reqs, 12, (engine, step) => {
    for (const d of engine.deviceView()) if (d.heads > 0) holding.add(d.id);
    during?.(engine, step);
  });
  assert.deepEqual(got, want);
  assert.deepEqual([...holding].sort(), ['attn-a', 'attn-b', 'primary'], 'heads were placed on every device');
  const stats = await Promise.all(handles.map((h) => h.stats()));
  assert.ok(stats.every((s) => s.heads === 0 && s.usedBlocks === 0), 'every head freed at the end');
}

test('heads split over three devices give the single-process greedy tokens (random GQA)', async () => {
  await compare(randomModel(GQA, 7), layout(1, 1));
});

test('TP=2 and PP=2 give the single-process greedy tokens (random GQA)', async () => {
  const model = randomModel(GQA, 8);
  await compare(model, layout(2, 1));
  await compare(model, layout(1, 2));
  await compare(model, layout(2, 2));
});

test('a head migrated mid-generation (KV copied between workers) changes nothing', async () => {
  const model = randomModel(GQA, 9);
  let moved = 0;
  await compare(model, layout(2, 2), (engine, step) => {
    if (step !== 6 && step !== 9) return;
    // Move every head of request 0 and 1 one device along: attention -> primary -> attention.
    for (const id of ['0', '1']) {
      const table = engine.blockTable(id);
      for (const h of table) {
        const to = h.device === 'primary' ? 'attn-a' : h.device === 'attn-a' ? 'attn-b' : 'primary';
        if (engine.moveHead(id, h.head, to)) moved++;
      }
    }
  });
  assert.ok(moved >= 6, `moved ${moved} heads`);
});

test('stories260K: three devices, TP=2 and PP=2 give the single-process greedy tokens', { skip: missingShared(stories260K) }, async () => {
  const model = loadLlama2c(stories260K);
  await compare(model, layout(1, 1));
  await compare(model, layout(2, 1));
  await compare(model, layout(1, 2));
});

test('HeadKv counts blocks, refuses beyond capacity, and round-trips an export', () => {
  const kv = new HeadKv([0, 2], 4, 4, 3);
  const k = Float32Array.from({ length: 4 }, (_, i) => i), v = Float32Array.from({ length: 4 }, (_, i) => -i);
  for (let pos = 0; pos < 5; pos++) for (const l of [0, 1]) kv.write(1, 2, l, pos, k, 0, v, 0);
  assert.equal(kv.usedBlocks(), 2);
  for (let pos = 0; pos < 4; pos++) kv.write(1, 3, 0, pos, k, 0, v, 0);
  assert.equal(kv.usedBlocks(), 3);
  assert.throws(() => kv.write(1, 3, 0, 4, k, 0, v, 0), /KV capacity exceeded/);
  const x = kv.exportHead(1, 2);
  assert.equal(x.length, 5);
  const other = new HeadKv([1, 2], 4, 4, 10);
  other.importHead(7, 2, x);
  assert.deepEqual([...other.buffers(7, 2, 1).v.subarray(0, 20)], [...kv.buffers(1, 2, 1).v.subarray(0, 20)]);
  kv.free(1);
  assert.equal(kv.usedBlocks(), 0);
});

test('a device that dies with migrations to it pending: its requests recompute on the others, same greedy tokens', async () => {
  const { ClusterSupervisor } = await import('../src/runtime/supervisor.js');
  const model = randomModel(GQA, 12);
  const spec = model.spec;
  const l = layout(1, 1);
  const reqs = prompts(spec);
  const single = localEngineConfig(spec, [{ id: 'local', primary: true, kvCapacityBytes: 64 << 20 }], [], { tuning: { blockSize: 8, tokenBudget: 24, maxRunning: 8, expectedOutput: 16, reserve: 0, redispatch: { enabled: false, memoryWatermark: 1, imbalance: 1, imbalanceSteps: 1 } } });
  const want = await run(single, new LocalExecutor(model, kernels), reqs, 12);
  const config: EngineConfig = { ...localEngineConfig(spec, layoutDevices(l), [], {}), placement: 'memory', tokenBudget: 24, blockSize: 8 };
  config.redispatch = { ...config.redispatch, enabled: false };
  const handles = inProcessCluster(model, layoutAssignments(spec, l), kernels);
  let dead = false;
  const victim = handles.find((h) => h.assignment.deviceId === 'attn-a')!;
  victim.alive = () => !dead;
  const exec = new ClusterExecutor(spec, handles);
  const logs: string[] = [];
  const sup = new ClusterSupervisor(exec, { log: (line) => logs.push(line) });
  const out = reqs.map(() => [] as number[]);
  const engine = new Engine(config, exec, { onToken: (id, tok) => out[Number(id)]!.push(tok) });
  reqs.forEach((p, i) => engine.submit({ id: String(i), arrival: 0, promptTokens: p, promptLength: p.length, maxTokens: 12 }));
  let moved = 0;
  for (let s = 0; engine.hasWork() && s < 500; s++) {
    if (s === 6) {
      for (const id of engine.runningIds()) for (const h of engine.blockTable(id)) if (h.device !== 'attn-a' && engine.moveHead(id, h.head, 'attn-a')) moved++;
      dead = true;
    }
    try { await engine.step(s); } catch (e) { assert.ok(sup.onStepError(e, engine)); }
  }
  assert.ok(moved > 0);
  assert.deepEqual(out, want);
  assert.ok(engine.records.every((r) => r.finishReason === 'length'), 'every request finished normally');
  assert.ok(logs.some((x) => /attn-a is gone/.test(x)), logs.join('\n'));
  assert.equal(engine.deviceView().find((d) => d.id === 'attn-a')!.alive, false);
});
