// Owns: measuring the round trips of the distributed runtime as it runs a step: a local cluster
// of one primary and one attention worker process (the model file's weights), decode steps of one
// sequence with its heads on the primary (the engine's step message and reply, beyond the
// primary's own work) and with its heads on the attention worker (one attend call per layer,
// beyond its attention). Messages inside a step cost more than an isolated ping between two
// processes (frames with several tensors and a JSON part, handlers, processes waking between
// layers on shared cores); and how much more the primary's own work in such a step takes than
// the profile's tables say. Must not: leave a worker running.

import type { ModelSpec } from '../model/spec.js';
import { median } from '../util/fit.js';
import { ClusterExecutor } from './cluster-executor.js';
import { startLocalCluster } from './local-cluster.js';
import type { StepPlan } from '../engine/types.js';

export interface RuntimeRoundTrips {
  /** Median engine -> primary -> engine round trip of a one-token step, less the primary's work, seconds. */
  step: number;
  /** Median primary -> attention worker -> primary round trip of one layer's attend call, less the attention, seconds. */
  attend: number;
  /** Median of the primary's measured work in a one-token step (dense ops, LM head, attention) less `localStep`'s prediction, seconds (>= 0). */
  stepOverhead: number;
  /** Steps measured of each kind. */
  steps: number;
}

/**
 * Runs `steps` one-token decode steps of one sequence (after a `context`-token prefill) with its
 * heads on the primary, then as many with its heads on the attention worker, and returns the
 * median round trips. `attention(headTokens, heads)` is one layer's attention time by the
 * profile, subtracted from each attend call.
 */
export async function measureRuntimeRoundTrips(o: {
  spec: ModelSpec; modelPath: string; steps?: number; context?: number;
  attention: (headTokens: number, heads: number) => number;
  /** The primary's work in a one-token step with all heads local over `headTokens` head-tokens per layer, by the profile. */
  localStep: (headTokens: number) => number;
  onSpawn?: (pid: number) => void;
}): Promise<RuntimeRoundTrips> {
  const spec = o.spec;
  const n = o.steps ?? 100;
  const context = Math.min(o.context ?? 32, Math.floor(spec.contextLength / 2));
  const kv = 16 * 2 * spec.headDim * spec.nLayers * 4 * spec.nKvHeads * Math.ceil(spec.contextLength / 16);
  const layout = { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 2 * kv }, attention: [{ id: 'attn', kvCapacityBytes: 2 * kv }], blockSize: 16 };
  const cluster = await startLocalCluster({ spec, modelPath: o.modelPath, layout, kernels: 'auto' });
  for (const p of cluster.processes) if (p.pid !== undefined) o.onSpawn?.(p.pid);
  try {
    const ex = new ClusterExecutor(spec, cluster.workers);
    let index = 0;
    const plan = (request: string, owner: string, start: number, count: number): StepPlan => ({
      index: index++, headDevices: { [request]: Array.from({ length: spec.nKvHeads }, () => owner) }, freed: [], migrations: [],
      chunks: [{ request, start, count, sample: true, tokens: Array.from({ length: count }, (_, i) => 1 + ((start + i) * 7) % (spec.vocabSize - 1)) }],
      predicted: { seconds: 0, interval: 0, parts: {} },
      shape: { prefill: [], decodeTokens: 0, sampledRows: 0, decodeHeads: [], decodeHeadTokens: [], shippedHeadTokens: [], migratedHeadTokens: [] },
    });
    const run = async (request: string, owner: string): Promise<Record<string, number>[]> => {
      await ex.execute(plan(request, owner, 0, context));
      const parts: Record<string, number>[] = [];
      const warm = 10;
      for (let i = 0; i < warm + n; i++) {
        const pos = context + (i % (spec.contextLength - context - 1));
        const r = await ex.execute(plan(request, owner, pos, 1));
        if (i >= warm) parts.push({ ...r.parts, position: pos });
        await new Promise((res) => setImmediate(res)); // the engine between steps
      }
      await ex.release([request]);
      return parts;
    };
    const local = await run('local', 'primary');
    const remote = await run('remote', 'attn');
    const attend = remote.map((p) => ((p['attention'] ?? 0) + (p['wait'] ?? 0)) / spec.nLayers - o.attention(spec.nKvHeads * ((p['position'] ?? context) + 1), spec.nKvHeads));
    const over = local.map((p) => (p['dense'] ?? 0) + (p['attention'] ?? 0) - o.localStep(spec.nKvHeads * ((p['position'] ?? context) + 1)));
    return { step: median(local.map((p) => p['transport'] ?? 0)), attend: Math.max(0, median(attend)), stepOverhead: Math.max(0, median(over)), steps: n };
  } finally {
    await cluster.close();
  }
}
