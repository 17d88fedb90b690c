// Garbage collection in the worker processes while they run decode steps: one-token steps of one
// sequence back to back (an event-loop turn between, as the engine issues them) on a local cluster
// of the built-in model, its heads on the primary or on an attention worker; each process's
// collections per 1,000 steps (WorkerStats.gc), their pause time, and the median step.
// Prints one JSON line per case on stdout; progress on stderr.
//
//   npx tsx bench/gc-steps.ts [--seconds 6] [--context 32]

import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/model/load.js';
import { ClusterExecutor } from '../src/runtime/cluster-executor.js';
import { startLocalCluster } from '../src/runtime/local-cluster.js';
import { probePlans } from '../src/runtime/profile-runtime.js';
import type { WorkerStats } from '../src/runtime/cluster-types.js';
import { median } from '../src/util/fit.js';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '6' }, context: { type: 'string', default: '32' } } });
const SECONDS = Number(values.seconds);
const CONTEXT = Number(values.context);
if (!(SECONDS > 0) || !(Number.isInteger(CONTEXT) && CONTEXT > 0)) throw new Error('--seconds must be positive and --context a positive whole number');

const modelPath = join(root, 'models/hetis-kjv.gguf');
const spec = loadModel(modelPath).model.spec;
const kvBytes = 16 << 20;
const cluster = await startLocalCluster({ spec, modelPath, layout: { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: kvBytes }, attention: [{ id: 'attn', kvCapacityBytes: kvBytes }], blockSize: 16 } });
try {
  const ex = new ClusterExecutor(spec, cluster.workers);
  const plan = probePlans(spec);
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  const stats = (): Promise<WorkerStats[]> => Promise.all(cluster.workers.map((w) => w.stats()));
  for (const owner of ['primary', 'attn']) {
    const id = `gc-${owner}`;
    await ex.execute(plan(id, owner, 0, CONTEXT));
    let pos = CONTEXT;
    const next = (): number => { const p = pos; pos = pos + 1 < spec.contextLength - 1 ? pos + 1 : CONTEXT; return p; };
    for (let i = 0; i < 300; i++) { await ex.execute(plan(id, owner, next(), 1)); await turn(); } // warm-up
    process.stderr.write(`gc-steps: heads on ${owner}, ${SECONDS} s of one-token steps\n`);
    const before = await stats();
    const times: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      times.push((await ex.execute(plan(id, owner, next(), 1))).seconds);
      await turn();
    }
    const after = await stats();
    await ex.release([id]);
    const per1000 = (x: number): number => +(1000 * x / times.length).toFixed(2);
    const processes = Object.fromEntries(after.map((s, i) => {
      const b = before[i]!.gc;
      return [s.deviceId, { collections_per_1000_steps: per1000(s.gc.collections - b.collections), gc_ms_per_1000_steps: per1000((s.gc.seconds - b.seconds) * 1e3), longest_ms_since_start: +(s.gc.longestSeconds * 1e3).toFixed(2) }];
    }));
    console.log(JSON.stringify({ bench: 'gc-steps', heads: owner, context: CONTEXT, steps: times.length, median_step_ms: +(median(times) * 1e3).toFixed(3), processes }));
  }
} finally {
  await cluster.close();
}
