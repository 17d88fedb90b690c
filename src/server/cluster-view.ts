// Owns: the JSON of `GET /v1/cluster`: the model, requests running and waiting, every device (its
// role, process, liveness, heads and KV blocks) and the last steps with their measured and
// predicted times. Must not: change the engine or the backend.

import type { Engine } from '../engine/engine.js';
import type { ServeBackend } from './backend.js';

/** Steps /v1/cluster shows. */
const CLUSTER_STEPS = 20;

/** What `/v1/cluster` answers for `backend` served by `engine`. */
export function clusterView(backend: ServeBackend, engine: Engine): object {
  const extra = new Map(backend.devices().map((d) => [d.id, d]));
  const primary = new Map(backend.engineConfig.devices.map((d) => [d.id, d.primary]));
  const { running, waiting } = engine.counts();
  return {
    model: backend.modelName,
    running, waiting,
    devices: engine.deviceView().map((d) => {
      const x = extra.get(d.id);
      return {
        id: d.id, role: x?.role ?? (primary.get(d.id) ? 'primary+attention' : 'attention'),
        pid: x?.pid ?? null, address: x?.address ?? null, alive: d.alive,
        heads: d.heads, head_tokens: d.headTokens, kv_used_blocks: d.usedBlocks, kv_free_blocks: d.freeBlocks,
      };
    }),
    steps: engine.steps.slice(-CLUSTER_STEPS).map((s) => ({
      index: s.index, seconds: s.seconds, predicted_seconds: s.predictedSeconds,
      prefill_tokens: s.prefillTokens, decode_tokens: s.decodeTokens, migrations: s.migrations, parts: s.parts ?? null,
    })),
  };
}
