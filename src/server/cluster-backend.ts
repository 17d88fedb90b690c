// Owns: the ServeBackend of a real cluster: worker processes started here (a local cluster) or
// started by hand (their addresses and a layout), the engine's devices for them, the cluster
// executor, and the supervisor that handles a dead worker. Must not: parse flags or files.

import type { ProfileFile } from '../cost/profile-types.js';
import type { Engine } from '../engine/engine.js';
import type { ModelSpec } from '../model/spec.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { ClusterExecutor } from '../runtime/cluster-executor.js';
import { layoutAssignments, layoutDevices, type ClusterLayout } from '../runtime/cluster-layout.js';
import type { KernelPreference } from '../runtime/kernel-select.js';
import { startLocalCluster, type LocalCluster } from '../runtime/local-cluster.js';
import { localEngineConfig, type ServingTuning } from '../runtime/local-devices.js';
import { connectWorkers, type RemoteWorker } from '../runtime/remote-worker.js';
import { ClusterSupervisor } from '../runtime/supervisor.js';
import { endOfSequenceIds, type ServeBackend } from './backend.js';

export interface ClusterBackendOptions {
  name: string;
  spec: ModelSpec;
  tokenizer: Tokenizer;
  /** The model file the primaries load (absolute path). */
  modelPath: string;
  layout: ClusterLayout;
  profile?: ProfileFile;
  tuning?: ServingTuning;
  token?: string;
  log?: (line: string) => void;
  /** Called when a dead attention device's worker is back and serving again. */
  onRejoin?: (deviceId: string) => void;
}

export interface ClusterBackend extends ServeBackend {
  executor: ClusterExecutor;
  supervisor: ClusterSupervisor;
  /** The local cluster's processes (local backends only). */
  local?: LocalCluster;
}

function build(o: ClusterBackendOptions, workers: RemoteWorker[], close: () => Promise<void>, restart?: LocalCluster['restart']): ClusterBackend {
  const l = o.layout;
  const eosIds = endOfSequenceIds(o.tokenizer);
  const engineConfig = localEngineConfig(o.spec, layoutDevices(l), eosIds, {
    tp: l.primary.tp, stages: l.primary.stages,
    ...(o.profile !== undefined ? { profile: o.profile } : {}), ...(o.tuning !== undefined ? { tuning: o.tuning } : {}),
    ...(l.primary.stageLayers !== undefined ? { stageLayers: l.primary.stageLayers } : {}),
  });
  const executor = new ClusterExecutor(o.spec, workers);
  const supervisor = new ClusterSupervisor(executor, {
    ...(restart !== undefined ? { restart } : {}), ...(o.log !== undefined ? { log: o.log } : {}), ...(o.onRejoin !== undefined ? { onRejoin: o.onRejoin } : {}),
  });
  return {
    modelName: o.name, spec: o.spec, tokenizer: o.tokenizer, engineConfig, executor, supervisor,
    devices: () => executor.handles.map((h) => {
      const w = h as RemoteWorker;
      return { id: h.assignment.deviceId, role: h.assignment.primary ? 'primary+attention' as const : 'attention' as const, pid: w.pid, address: w.address };
    }),
    onStepError: (e: unknown, engine: Engine) => supervisor.onStepError(e, engine),
    close,
  };
}

/** Starts the layout's workers as processes on this machine; a dead attention worker is restarted. */
export async function localClusterBackend(o: ClusterBackendOptions & { threads?: number; kernels?: KernelPreference; timeoutMs?: number }): Promise<ClusterBackend> {
  const local = await startLocalCluster({
    spec: o.spec, modelPath: o.modelPath, layout: o.layout, threads: o.threads ?? 1, kernels: o.kernels ?? 'auto',
    ...(o.token !== undefined ? { token: o.token } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.log !== undefined ? { log: o.log } : {}),
  });
  return { ...build(o, local.workers, local.close, local.restart), local };
}

/**
 * Connects to workers started by hand at `addresses` (layoutAssignments order). A dead attention
 * worker is not restarted from here (it runs on another host); its address is tried every
 * `retryMs` until a worker answers there again, which then rejoins.
 */
export async function remoteClusterBackend(o: ClusterBackendOptions & { addresses: string[]; retryMs?: number }): Promise<ClusterBackend> {
  const copts = o.token !== undefined ? { token: o.token } : {};
  const workers = await connectWorkers(o.addresses, layoutAssignments(o.spec, o.layout, { path: o.modelPath }, o.addresses), copts);
  let closed = false;
  const reconnect = async (deviceId: string): Promise<RemoteWorker> => {
    const old = workers.find((w) => w.assignment.deviceId === deviceId && w.assignment.primary === undefined);
    if (old === undefined) throw new Error(`no attention device '${deviceId}'`);
    for (;;) {
      if (closed) throw new Error('the server is closing');
      try {
        const [w] = await connectWorkers([old.address], [old.assignment], copts);
        workers[workers.indexOf(old)] = w!;
        return w!;
      } catch {
        await new Promise((r) => setTimeout(r, o.retryMs ?? 2000));
      }
    }
  };
  return build(o, workers, async () => { closed = true; await Promise.all(workers.map((w) => w.peer.close())); }, reconnect);
}
