// Owns: describing CPU devices on this machine (an in-process engine, or the local cluster of
// worker processes) as the engine sees them: the cost model (a profile's tables when one is
// given, else a nominal CPU roofline), the dense stages and the head-holding devices with their
// KV capacity. Must not: start processes or measure anything.

import type { EngineConfig } from '../engine/engine.js';
import type { DenseStage } from '../engine/step-cost.js';
import type { DispatchDevice } from '../dispatch/types.js';
import { withEmulatedDevices } from '../cost/emulated.js';
import { createProfiledCostModel, modelShape, sameShape } from '../cost/profiled.js';
import type { ProfileFile } from '../cost/profile-types.js';
import { createRooflineCostModel } from '../cost/roofline.js';
import { FP32, type CostModel } from '../cost/types.js';
import { getLink } from '../hardware/catalog.js';
import type { DeviceSpec } from '../hardware/types.js';
import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';

/** A CPU when no profile was measured: round numbers for one core of a current server. */
export const NOMINAL_CPU: DeviceSpec = {
  name: 'cpu-nominal', kind: 'cpu', peakFlops: 50e9, memoryBytes: 16e9, memoryBandwidth: 20e9,
  computeEfficiency: 1, memoryEfficiency: 1, kernelOverhead: 2e-6, defaultIntraLink: 'loopback',
};

/** One device of a local cluster. */
export interface LocalDevice {
  id: string;
  /** Holds weights and runs the dense path (it also holds heads). */
  primary: boolean;
  /** Bytes of KV cache it may hold. */
  kvCapacityBytes: number;
  /** Emulated slowness (>= 1): its attention runs this many times slower. */
  slowdown?: number;
}

/** Engine settings for CPU serving (not the GPU simulator's). */
export interface ServingTuning {
  blockSize: number;
  tokenBudget: number;
  maxRunning: number;
  expectedOutput: number;
  reserve: number;
  redispatch: EngineConfig['redispatch'];
}

export const SERVING_TUNING: ServingTuning = {
  blockSize: 16,
  tokenBudget: 256,
  maxRunning: 64,
  expectedOutput: 128,
  reserve: 0.02,
  redispatch: { enabled: true, memoryWatermark: 0.98, imbalance: 0.25, imbalanceSteps: 16 },
};

/** The cost model of CPU devices: the profile's tables for `spec`'s shape when it has them. */
export function localCostModel(spec: ModelSpec, profile?: ProfileFile): { cost: CostModel; device: DeviceSpec } {
  const base = createRooflineCostModel(spec, FP32);
  if (profile === undefined) return { cost: base, device: NOMINAL_CPU };
  const device = profile.devices[0];
  if (device === undefined) throw new HetisError('bad_file', 'the profile describes no device');
  const matching = profile.profiles.filter((p) => sameShape(p.model, modelShape(spec)));
  return { cost: createProfiledCostModel(base, matching, profile.links), device };
}

/**
 * The engine configuration for `devices` (exactly one primary; `stages` pipeline stages of
 * `tp` ranks on it, all on this machine's loopback).
 */
export function localEngineConfig(
  spec: ModelSpec, devices: readonly LocalDevice[], eosIds: readonly number[],
  opts: {
    profile?: ProfileFile; tuning?: ServingTuning; stages?: number; tp?: number; stageLayers?: [number, number][];
    /** The devices are worker processes (default true): steps cost the runtime's messages. False: the engine runs the model in its own process. */
    processes?: boolean;
  } = {},
): EngineConfig {
  const primaries = devices.filter((d) => d.primary);
  if (primaries.length !== 1) throw new HetisError('bad_input', `a local cluster has exactly one primary device, got ${primaries.length}`);
  const local = localCostModel(spec, opts.profile);
  const device = local.device;
  const tuning = opts.tuning ?? SERVING_TUNING;
  const loopback = getLink('loopback');
  const nStages = opts.stages ?? 1;
  // Every step goes from the engine to each stage's ranks and back over the loopback (worker
  // processes); the processes attending one layer take turns on the cores (LOCAL_ATTENTION_CORES).
  const stages: DenseStage[] = Array.from({ length: nStages }, (_, s) => {
    const [a, b] = opts.stageLayers?.[s] ?? layersOfStage(spec.nLayers, nStages, s);
    const runtime = opts.processes === false ? (s < nStages - 1 ? { nextLink: loopback } : {}) : { engineLink: loopback, attentionCores: LOCAL_ATTENTION_CORES };
    return { spec: device, tp: opts.tp ?? 1, layers: b - a, hostLink: loopback, ...runtime };
  });
  const specs = devices.map((d) => slowed(device, d.slowdown ?? 1));
  const cost = withEmulatedDevices(local.cost, devices.map((d, i) => ({ spec: specs[i]!, of: device, factor: d.slowdown ?? 1 })), emulatedWait);
  const perHeadToken = cost.kvBytesPerHeadToken();
  const dispatch: DispatchDevice[] = devices.map((d, i) => ({
    id: d.id, primary: d.primary, link: loopback, alive: true,
    spec: specs[i]!,
    capacity: Math.floor(d.kvCapacityBytes / perHeadToken),
  }));
  return {
    cost, stages, devices: dispatch, blockSize: tuning.blockSize, tokenBudget: tuning.tokenBudget, maxRunning: tuning.maxRunning,
    expectedOutput: tuning.expectedOutput, reserve: tuning.reserve, eosIds, placement: 'cost', pipeline: false,
    redispatch: tuning.redispatch,
  };
}

/**
 * Cores one layer's attention gets on the local cluster, all its processes together. Measured on
 * the 2-core development machine with both cores free: 64 KV heads x 16 sequences attended on
 * one attention worker took 2.9 ms a step, split over two workers 3.2 ms, split between the
 * primary and one worker 2.8 ms: no overlap at all. Each worker is woken by the primary's message
 * and Linux wakes it on the waker's core (wake-affine), so they take turns on one core.
 */
export const LOCAL_ATTENTION_CORES = 1;

/** Layers [start, end) of stage `s` of `stages` (as even as possible, earlier stages one more). */
export function layersOfStage(nLayers: number, stages: number, s: number): [number, number] {
  const base = Math.floor(nLayers / stages), extra = nLayers % stages;
  const start = s * base + Math.min(s, extra);
  return [start, start + base + (s < extra ? 1 : 0)];
}

/**
 * What `Atomics.wait` sleeps beyond the time asked, ms (measured on the 2-core development
 * machine: 0.067-0.077 ms for waits of 0.005-1 ms): the emulating worker asks for that much
 * less, and does not wait for less than it.
 */
export const EMULATION_WAIT_SLACK_MS = 0.07;

/**
 * How long an emulated slow worker's wait for `seconds` lasts (runtime/worker-core.ts: after an
 * attention call of c seconds it waits (slowdown - 1) x c with `Atomics.wait`, asking for the
 * wake-up slack less, and does not wait when that is under the slack): the time asked, or
 * nothing below 0.07 ms.
 */
export function emulatedWait(seconds: number): number {
  return seconds * 1e3 > EMULATION_WAIT_SLACK_MS ? seconds : 0;
}

function slowed(d: DeviceSpec, factor: number): DeviceSpec {
  if (factor === 1) return d;
  return { ...d, name: `${d.name}/x${factor}`, peakFlops: d.peakFlops / factor, memoryBandwidth: d.memoryBandwidth / factor };
}
