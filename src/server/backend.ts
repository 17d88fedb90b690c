// Owns: the boundary the HTTP server runs on (ServeBackend: a model, its tokenizer, an engine
// configuration and an executor), and the in-process backend that runs the model in this
// process. Must not: know about HTTP, or start worker processes (a cluster backend does).

import type { Engine, EngineConfig } from '../engine/engine.js';
import type { Executor } from '../engine/types.js';
import type { ModelSpec } from '../model/spec.js';
import type { Tokenizer } from '../model/tokenizer.js';
import type { LoadedModel } from '../model/weights.js';
import { getKernels, type MatmulKernels } from '../runtime/kernel-select.js';
import { LocalExecutor } from '../runtime/local-executor.js';
import { localEngineConfig, type ServingTuning } from '../runtime/local-devices.js';
import { HetisError } from '../util/errors.js';

export type DeviceRole = 'primary' | 'attention' | 'primary+attention';

/** A device as /v1/cluster shows it beyond what the engine knows. */
export interface ServeDevice {
  id: string;
  role: DeviceRole;
  /** The process that runs it. */
  pid?: number;
  /** Where its worker listens (cluster backends). */
  address?: string;
}

/**
 * What the server fronts: the same server serves the in-process engine and a distributed
 * cluster. The server builds the Engine from `engineConfig` and `executor` and owns it.
 */
export interface ServeBackend {
  /** What /v1/models lists; requests must name exactly this model. */
  modelName: string;
  spec: ModelSpec;
  tokenizer: Tokenizer;
  engineConfig: EngineConfig;
  executor: Executor;
  /** Devices as /v1/cluster shows them beyond what the engine knows: role and worker pid. */
  devices(): ServeDevice[];
  /**
   * A step failed: decide (fail a device, or abort all). Return true to keep serving.
   * Default when absent: abort every request with 'error' and keep serving.
   */
  onStepError?(error: unknown, engine: Engine): boolean | Promise<boolean>;
  /** Releases what the backend holds (worker processes, sockets). Called once, after the engine stopped. */
  close(): Promise<void>;
}

/** Token ids that end generation: EOS, and BOS (llama2.c-style models emit it between documents), as `hetis generate` stops. */
export function endOfSequenceIds(tokenizer: Tokenizer): number[] {
  return [...new Set([tokenizer.eosId, tokenizer.bosId])];
}

export interface InProcessOptions {
  /** The model name clients use (default: the spec's name). */
  name?: string;
  /** KV cache the engine may use, bytes (default 64 MiB). */
  kvCapacityBytes?: number;
  /** Matrix-product backend (default: getKernels()). */
  kernels?: MatmulKernels;
  /** Engine settings (default: runtime/local-devices.ts's SERVING_TUNING). */
  tuning?: ServingTuning;
}

/**
 * A backend running `model` in this process on one device 'local' that holds every head.
 * Generation ends at EOS and at BOS (llama2.c-style models emit it between documents), as in
 * runtime/generate.ts.
 */
export function inProcessBackend(model: LoadedModel, tokenizer: Tokenizer, opts: InProcessOptions = {}): ServeBackend {
  const spec = model.spec;
  if (tokenizer.vocabSize !== spec.vocabSize) {
    throw new HetisError('bad_input', `tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${spec.vocabSize}`);
  }
  const eosIds = endOfSequenceIds(tokenizer);
  // One process: steps pay no worker messages (processes: false).
  const engineConfig = localEngineConfig(spec, [{ id: 'local', primary: true, kvCapacityBytes: opts.kvCapacityBytes ?? 64 << 20 }], eosIds,
    { processes: false, ...(opts.tuning !== undefined ? { tuning: opts.tuning } : {}) });
  return {
    modelName: opts.name ?? spec.name,
    spec, tokenizer, engineConfig,
    executor: new LocalExecutor(model, opts.kernels ?? getKernels()),
    devices: () => [{ id: 'local', role: 'primary+attention', pid: process.pid }],
    close: () => Promise.resolve(),
  };
}
