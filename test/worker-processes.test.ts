// Real worker processes over the transport: the local cluster (one primary and two attention
// workers; TP=2 and PP=2 variants) produces the single-process greedy tokens, also after heads
// migrate between processes mid-generation, and every process is stopped afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, type EngineConfig } from '../src/engine/engine.js';
import { loadModel } from '../src/model/load.js';
import type { LoadedModel } from '../src/model/weights.js';
import { writeGgufModel } from '../src/model/gguf-llama.js';
import type { ModelSpec } from '../src/model/spec.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { LocalExecutor } from '../src/runtime/local-executor.js';
import { localEngineConfig } from '../src/runtime/local-devices.js';
import { layoutDevices, type ClusterLayout } from '../src/runtime/cluster-layout.js';
import { ClusterExecutor } from '../src/runtime/cluster-executor.js';
import { startLocalCluster } from '../src/runtime/local-cluster.js';
import { runToEnd } from './helpers/engine-run.js';
import { randomModel, syntheticVocab } from './helpers/random-model.js';
import { tempDir } from './helpers/files.js';
import { missingShared, stories260K } from './helpers/shared.js';

const GQA: ModelSpec = {
  name: 'random-gqa', nLayers: 4, nHeads: 8, nKvHeads: 4, headDim: 6, dim: 40, ffnDim: 72,
  vocabSize: 61, contextLength: 128, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};

const kernels = getKernels('auto');

function prompts(vocab: number): number[][] {
  return [0, 1, 2, 3].map((s) => Array.from({ length: 4 + s * 9 }, (_, i) => 3 + ((i * 11 + s * 5) % (vocab - 3))));
}

const run = runToEnd;

const layout = (tp: number, stages: number): ClusterLayout => ({
  primary: { id: 'primary', tp, stages, kvCapacityBytes: 1 << 20 },
  attention: [{ id: 'attn-1', kvCapacityBytes: 2 << 20 }, { id: 'attn-2', kvCapacityBytes: 1 << 20 }],
  blockSize: 8,
});

async function compare(model: LoadedModel, path: string, l: ClusterLayout, during?: (engine: Engine, step: number) => void): Promise<void> {
  const spec = model.spec;
  const reqs = prompts(spec.vocabSize);
  const single = localEngineConfig(spec, [{ id: 'local', primary: true, kvCapacityBytes: 64 << 20 }], []);
  const want = await run({ ...single, tokenBudget: 20 }, new LocalExecutor(model, kernels), reqs, 10);
  const cluster = await startLocalCluster({ spec, modelPath: path, layout: l, timeoutMs: 20000 });
  try {
    const config: EngineConfig = { ...localEngineConfig(spec, layoutDevices(l), [], { tp: l.primary.tp, stages: l.primary.stages }), placement: 'memory', tokenBudget: 20, blockSize: 8 };
    config.redispatch = { ...config.redispatch, enabled: false };
    const got = await run(config, new ClusterExecutor(spec, cluster.workers), reqs, 10, during);
    assert.deepEqual(got, want);
    const stats = await Promise.all(cluster.workers.map((w) => w.stats()));
    assert.equal(new Set(stats.map((s) => s.pid)).size, cluster.workers.length, 'one process per worker');
    assert.ok(stats.every((s) => s.pid !== process.pid));
    assert.ok(stats.every((s) => s.heads === 0 && s.usedBlocks === 0), 'KV freed on every worker');
    assert.ok(stats.every((s) => s.gc.collections >= 0 && s.gc.longestSeconds <= s.gc.seconds), JSON.stringify(stats.map((s) => s.gc)));
  } finally {
    await cluster.close();
  }
  for (const p of cluster.processes) assert.ok(p.exitCode !== null || p.signalCode !== null, `worker ${p.pid} stopped`);
}

test('worker processes: 1 primary + 2 attention workers, TP=2, PP=2 equal the single process (random GQA)', { timeout: 120_000 }, async () => {
  const dir = tempDir('hetis-workers');
  const path = join(dir, 'gqa.gguf');
  const model = randomModel(GQA, 11);
  writeGgufModel(path, model, syntheticVocab(GQA.vocabSize), { type: 'F32' });
  const loaded = loadModel(path).model;
  await compare(loaded, path, layout(1, 1));
  await compare(loaded, path, layout(2, 1));
  await compare(loaded, path, layout(1, 2));
});

test('worker processes: heads migrated between processes mid-generation change nothing', { timeout: 120_000 }, async () => {
  const path = 'models/hetis-kjv.gguf';
  const model = loadModel(path).model;
  let moved = 0;
  await compare(model, path, layout(1, 1), (engine, step) => {
    if (step !== 5) return;
    for (const id of ['0', '1', '2']) {
      for (const h of engine.blockTable(id)) {
        const to = h.device === 'primary' ? 'attn-1' : h.device === 'attn-1' ? 'attn-2' : 'primary';
        if (engine.moveHead(id, h.head, to)) moved++;
      }
    }
  });
  assert.ok(moved >= 8, `moved ${moved} heads`);
});

/** Pids of the worker processes this process started that are still running (Linux: from /proc). */
function workerChildren(): number[] {
  return readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d)).flatMap((d) => {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('worker-main') ? [Number(d)] : [];
    } catch {
      return []; // exited meanwhile
    }
  });
}

test('worker processes: a restart still starting when the cluster closes stops its own worker; nothing outlives the cluster', { timeout: 60_000, skip: existsSync('/proc/self/stat') ? false : 'needs /proc' }, async () => {
  const path = 'models/hetis-kjv.gguf';
  const cluster = await startLocalCluster({ spec: loadModel(path).model.spec, modelPath: path, layout: layout(1, 1), timeoutMs: 20000 });
  try {
    assert.equal(workerChildren().length, 3);
    const restarting = cluster.restart('attn-1'); // a new process, not yet listening
    await cluster.close();
    await assert.rejects(restarting, /closed while a worker was restarting/);
    assert.deepEqual(workerChildren(), [], 'every worker process has exited');
  } finally {
    for (const pid of workerChildren()) process.kill(pid, 'SIGKILL'); // a failure must not leave one holding this process
  }
});

test('worker processes: stories260K over three processes, TP=2 and PP=2 equal the single process', { timeout: 120_000, skip: missingShared(stories260K) }, async () => {
  const model = loadModel(stories260K).model;
  await compare(model, stories260K, layout(1, 1));
  await compare(model, stories260K, layout(2, 1));
  await compare(model, stories260K, layout(1, 2));
});
