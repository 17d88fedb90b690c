// Owns: the cost of devices that emulate a slower one by waiting after their work (the local
// cluster's `--attention 32MiB:2` workers): their attention costs the real device's times the
// factor, and each attention call adds what the emulation's wait adds beyond that (its timer's
// rounding). Must not: know how the wait is implemented (the caller passes its duration).

import type { DeviceSpec, LinkSpec } from '../hardware/types.js';
import { NO_SERVING_EVENTS, type CostModel, type Estimate, type PrefillChunk } from './types.js';

/** A device that runs on `of` and waits (factor - 1) x its compute after each attention call. */
export interface EmulatedDevice {
  /** The spec the engine sees for it (its own name). */
  spec: DeviceSpec;
  /** The device that actually computes. */
  of: DeviceSpec;
  /** >= 1. */
  factor: number;
}

function scaled(e: Estimate, f: number): Estimate {
  const parts: Record<string, number> = {};
  for (const [k, v] of Object.entries(e.parts)) parts[k] = v * f;
  return { seconds: e.seconds * f, parts, ...(e.source !== undefined ? { source: e.source } : {}) };
}

/**
 * `base` with the emulated devices answered from the devices they run on: attention (decode and
 * prefill) and dense ops x factor, which is what the dispatcher optimises; `attendDelay` adds, per
 * call, `wait((factor - 1) x compute) - (factor - 1) x compute`, where `wait(s)` is how long the
 * emulation's wait for s seconds really lasts (a timer that rounds). Other devices: `base`.
 */
export function withEmulatedDevices(base: CostModel, devices: readonly EmulatedDevice[], wait: (seconds: number) => number): CostModel {
  const byName = new Map(devices.filter((d) => d.factor !== 1).map((d) => [d.spec.name, d]));
  const emulated = (d: DeviceSpec): EmulatedDevice | undefined => byName.get(d.name);
  /** The device that really runs `d`'s work. */
  const actual = (d: DeviceSpec): DeviceSpec => emulated(d)?.of ?? d;
  if (byName.size === 0) return base;
  return {
    ...base,
    model: base.model,
    precision: base.precision,
    denseLayer(device: DeviceSpec, tokens: number, tp: number) {
      const e = emulated(device);
      return e === undefined ? base.denseLayer(device, tokens, tp) : scaled(base.denseLayer(e.of, tokens, tp), e.factor);
    },
    lmHead(device: DeviceSpec, rows: number, tp: number) {
      const e = emulated(device);
      return e === undefined ? base.lmHead(device, rows, tp) : scaled(base.lmHead(e.of, rows, tp), e.factor);
    },
    prefillAttention(device: DeviceSpec, chunks: readonly PrefillChunk[], kvHeads: number) {
      const e = emulated(device);
      return e === undefined ? base.prefillAttention(device, chunks, kvHeads) : scaled(base.prefillAttention(e.of, chunks, kvHeads), e.factor);
    },
    decodeAttention(device: DeviceSpec, headTokens: number, heads: number) {
      const e = emulated(device);
      return e === undefined ? base.decodeAttention(device, headTokens, heads) : scaled(base.decodeAttention(e.of, headTokens, heads), e.factor);
    },
    stepOverhead(device: DeviceSpec) {
      return base.stepOverhead?.(actual(device)) ?? 0;
    },
    denseInStep(device: DeviceSpec, tokens: number, localShare: number) {
      return base.denseInStep?.(actual(device), tokens, localShare) ?? 1;
    },
    coldStep(device: DeviceSpec, idle: number, sincePrefill: number | undefined) {
      return base.coldStep?.(actual(device), idle, sincePrefill) ?? 0;
    },
    attentionInStep(device: DeviceSpec) {
      return base.attentionInStep?.(actual(device)) ?? { perHead: 0, perHeadToken: 0 };
    },
    prefillAttentionInStep(device: DeviceSpec, tokens: number) {
      return base.prefillAttentionInStep?.(actual(device), tokens) ?? 1;
    },
    messagePerSequence(device: DeviceSpec) {
      return base.messagePerSequence?.(actual(device)) ?? { step: 0, attend: 0 };
    },
    migrateHead(device: DeviceSpec, link: LinkSpec, bytes: number) {
      return base.migrateHead?.(actual(device), link, bytes);
    },
    sampling(device: DeviceSpec, kind: 'plain' | 'truncated') {
      return base.sampling?.(actual(device), kind) ?? 0;
    },
    migrationStep(device: DeviceSpec) {
      return base.migrationStep?.(actual(device)) ?? 0;
    },
    engineStep(device: DeviceSpec, sequences: number, sincePrefill?: number) {
      return base.engineStep?.(actual(device), sequences, sincePrefill) ?? 0;
    },
    servingEvents(device: DeviceSpec) {
      return base.servingEvents?.(actual(device)) ?? NO_SERVING_EVENTS;
    },
    attendDelay(device: DeviceSpec, compute: number) {
      const e = emulated(device);
      if (e === undefined) return base.attendDelay?.(device, compute) ?? 0;
      const extra = (compute * (e.factor - 1)) / e.factor; // compute = factor x the real device's time
      return wait(extra) - extra; // negative when the emulation does not wait at all
    },
  };
}
