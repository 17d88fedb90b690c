// Owns: the profiled cost model: measured tables (hetis profile, Vidur) override a base model
// per device and op, interpolated inside their grid; everything else comes from the base.
// Must not: read files or fit tables (vidur.ts and the profiler produce them).

import type { LinkSpec } from '../hardware/types.js';
import type { ModelSpec } from '../model/spec.js';
import type { ColdSteps, DecodeAttentionProfile, DenseInStep, DeviceProfile, EngineStepProfile, LinkProfile, MessagePerSequence, MigrationProfile, ModelShape, OpTable, PrefillAttentionInStep, PrefillAttentionProfile, SamplingCostProfile } from './profile-types.js';
import { causalPairs, ringAllReduceParts } from './roofline.js';
import { checkTable, interpolate, type InterpolationMode } from './table.js';
import { NO_SERVING_EVENTS, type AttentionInStep, type CostModel, type Estimate, type EstimateSource, type Precision, type ServingEvents } from './types.js';
import { HetisError } from '../util/errors.js';

export interface ProfiledOptions {
  /** Interpolation between grid points (default 'linear'; see docs/cost-model.md for the comparison). */
  interpolation?: InterpolationMode;
}

/** The shape a profile table must match to apply to a model. */
export function modelShape(model: ModelSpec): ModelShape {
  return {
    dim: model.dim, ffnDim: model.ffnDim, nHeads: model.nHeads, nKvHeads: model.nKvHeads,
    headDim: model.headDim, vocabSize: model.vocabSize, gatedMlp: model.gatedMlp !== false,
  };
}

export function sameShape(a: ModelShape, b: ModelShape): boolean {
  return a.dim === b.dim && a.ffnDim === b.ffnDim && a.nHeads === b.nHeads && a.nKvHeads === b.nKvHeads &&
    a.headDim === b.headDim && a.vocabSize === b.vocabSize && a.gatedMlp === b.gatedMlp;
}

function samePrecision(a: Precision, b: Precision): boolean {
  return a.weight === b.weight && a.kv === b.kv && a.activation === b.activation;
}

/** The tables of one device that apply to the base model. */
interface DeviceTables {
  ops: Map<string, OpTable>; // key `${op}@${tp}`
  decode?: DecodeAttentionProfile;
  prefill?: PrefillAttentionProfile;
  stepOverhead?: number;
  denseInStep?: DenseInStep;
  coldSteps?: ColdSteps;
  engineStep?: EngineStepProfile;
  messagePerSequence?: MessagePerSequence;
  attentionInStep?: AttentionInStep;
  prefillInStep?: PrefillAttentionInStep;
  migration?: MigrationProfile;
  sampling?: SamplingCostProfile;
  /** The profile's serving costs as the cost model hands them out (built once: read every step). */
  serving?: ServingEvents;
}

const key = (op: string, tp: number): string => `${op}@${tp}`;

function withSource(parts: Record<string, number>, source: Record<string, EstimateSource>): Estimate {
  let seconds = 0;
  for (const v of Object.values(parts)) seconds += v;
  return { seconds, parts, source };
}

/**
 * A CostModel that answers from measured tables where they exist for the same device name,
 * model shape (ModelShape equality with base.model), precision, op and tp, and from `base`
 * otherwise:
 *
 * - Inside a table's token grid: interpolated (source 'table').
 * - Outside it: the base's estimate of that op scaled by table/base at the nearest grid point
 *   (source 'table-edge'), so the curve is continuous at the edge and keeps the base's shape
 *   (linear growth once compute-bound) beyond it.
 * - Decode attention: fixed + perHead·heads ('overhead') + perHeadToken·headTokens
 *   ('decode_attn'), source 'fit'.
 * - Prefill attention: the table measures one chunk over all KV heads; a batch is looked up at
 *   the chunk length with the same causal work (pairs x heads).
 * - Step overhead: the profile's stepOverhead for the device (0 without).
 * - Dense work in a step: the profile's denseInStep factors at the token count (nearest end
 *   outside the grid), local and remote mixed by the share of attention on the primary (1 without).
 * - Cold steps: the profile's wake-up after an idle, linear in log(idle) between the measured
 *   idles (0 below the shortest, the longest's beyond), plus afterPrefill[sincePrefill].
 * - Engine step: fixed + perSequence x sequences; message per sequence: the profile's (0 without).
 * - A migrated head: the profile's time per head, plus the difference its bytes make crossing
 *   the link twice (against the measured head's).
 * - Links: a LinkProfile of the link's kind gives sendRecv from its table inside the measured
 *   sizes and its fitted latency/bandwidth outside; allReduce uses the fitted latency/bandwidth
 *   in the ring formula (with the link's allReduceEfficiency).
 *
 * Every estimate carries `source`, naming each part's origin ('roofline' for base parts).
 */
export function createProfiledCostModel(base: CostModel, profiles: readonly DeviceProfile[], links: readonly LinkProfile[] = [], opts: ProfiledOptions = {}): CostModel {
  const mode = opts.interpolation ?? 'linear';
  const shape = modelShape(base.model);
  const byDevice = new Map<string, DeviceTables>();
  for (const p of profiles) {
    if (!sameShape(p.model, shape) || !samePrecision(p.precision, base.precision)) continue;
    const t = byDevice.get(p.device) ?? { ops: new Map<string, OpTable>() };
    for (const table of p.dense) {
      checkTable(table.tokens, table.seconds, `${p.device} ${table.op} tp=${table.tp}`);
      t.ops.set(key(table.op, table.tp), table);
    }
    if (p.decodeAttention !== undefined) t.decode = p.decodeAttention;
    if (p.stepOverhead !== undefined) t.stepOverhead = p.stepOverhead;
    if (p.denseInStep !== undefined) {
      checkTable(p.denseInStep.tokens, p.denseInStep.local, `${p.device} dense in step (local)`);
      checkTable(p.denseInStep.tokens, p.denseInStep.remote, `${p.device} dense in step (remote)`);
      t.denseInStep = p.denseInStep;
    }
    if (p.coldSteps !== undefined) t.coldSteps = p.coldSteps;
    if (p.engineStep !== undefined) t.engineStep = p.engineStep;
    if (p.messagePerSequence !== undefined) t.messagePerSequence = p.messagePerSequence;
    if (p.attentionInStep !== undefined) {
      const a = typeof p.attentionInStep === 'number' ? { perHead: 0, perHeadToken: p.attentionInStep } : p.attentionInStep;
      if (!Number.isFinite(a.perHead) || !Number.isFinite(a.perHeadToken)) throw new HetisError('bad_input', `${p.device} attention in step: perHead and perHeadToken must be numbers`);
      t.attentionInStep = a;
    }
    if (p.prefillAttentionInStep !== undefined) {
      checkTable(p.prefillAttentionInStep.tokens, p.prefillAttentionInStep.factor, `${p.device} prefill attention in step`);
      t.prefillInStep = p.prefillAttentionInStep;
    }
    if (p.migration !== undefined) t.migration = p.migration;
    if (p.sampling !== undefined) {
      if (!(p.sampling.plain >= 0 && p.sampling.truncated >= 0)) throw new HetisError('bad_input', `${p.device} sampling: plain and truncated must be seconds >= 0`);
      t.sampling = p.sampling;
    }
    if (p.serving !== undefined) {
      const s = p.serving;
      t.serving = Object.freeze({
        admitted: s.admitted, finished: s.finished, arrival: s.arrival, step: s.step ?? 0,
        ...(s.busy !== undefined ? { busy: s.busy } : {}),
        ...(s.light !== undefined ? { light: { step: s.light.step, busy: s.light.busy } } : {}),
      });
    }
    if (p.prefillAttention !== undefined) {
      checkTable(p.prefillAttention.tokens, p.prefillAttention.seconds, `${p.device} prefill attention`);
      t.prefill = p.prefillAttention;
    }
    byDevice.set(p.device, t);
  }
  const linkByKind = new Map<string, LinkProfile>();
  for (const l of links) {
    if (l.kind === 'custom') continue;
    checkTable(l.bytes, l.seconds, `link ${l.kind}`);
    linkByKind.set(l.kind, l);
  }

  /** Table value at x, or the base's shape scaled to the nearest edge point. */
  function lookup(xs: readonly number[], ys: readonly number[], x: number, baseAt: (x: number) => number): { v: number; source: EstimateSource } {
    const inside = interpolate(xs, ys, x, mode);
    if (inside !== undefined) return { v: inside, source: 'table' };
    const edge = x < xs[0]! ? 0 : xs.length - 1;
    const atEdge = baseAt(xs[edge]!);
    const measured = ys[edge]!;
    return { v: atEdge > 0 ? baseAt(x) * (measured / atEdge) : measured, source: 'table-edge' };
  }

  function fromTables(est: Estimate, tables: DeviceTables | undefined, tableFor: (part: string) => OpTable | undefined,
    tokens: number, baseAt: (x: number) => Estimate): Estimate {
    const parts: Record<string, number> = {};
    const source: Record<string, EstimateSource> = {};
    for (const [part, v] of Object.entries(est.parts)) {
      const table = tables === undefined ? undefined : tableFor(part);
      if (table === undefined || tokens === 0) {
        parts[part] = v;
        source[part] = 'roofline';
        continue;
      }
      const r = lookup(table.tokens, table.seconds, tokens, (x) => baseAt(x).parts[part] ?? 0);
      parts[part] = r.v;
      source[part] = r.source;
    }
    return withSource(parts, source);
  }

  function linkFor(link: LinkSpec): LinkProfile | undefined {
    return link.kind === 'custom' ? undefined : linkByKind.get(link.kind);
  }

  return {
    model: base.model,
    precision: base.precision,

    denseLayer(device, tokens, tp) {
      const tables = byDevice.get(device.name);
      return fromTables(base.denseLayer(device, tokens, tp), tables, (op) => tables?.ops.get(key(op, tp)), tokens,
        (x) => base.denseLayer(device, x, tp));
    },

    lmHead(device, rows, tp) {
      const tables = byDevice.get(device.name);
      // The final norm has the shape of a layer norm (replicated on every rank): any tp's table serves.
      const normTable = (): OpTable | undefined => {
        const same = tables?.ops.get(key('input_norm', tp));
        if (same !== undefined) return same;
        for (const t of tables?.ops.values() ?? []) if (t.op === 'input_norm') return t;
        return undefined;
      };
      return fromTables(base.lmHead(device, rows, tp), tables,
        (part) => (part === 'lm_head' ? tables?.ops.get(key('lm_head', tp)) : part === 'final_norm' ? normTable() : undefined),
        rows, (x) => base.lmHead(device, x, tp));
    },

    prefillAttention(device, chunks, kvHeads) {
      const table = byDevice.get(device.name)?.prefill;
      const est = base.prefillAttention(device, chunks, kvHeads);
      if (table === undefined || est.seconds === 0) return withSource(est.parts, sourceAll(est, 'roofline'));
      // One chunk of n tokens over all nKvHeads heads has nKvHeads·n(n+1)/2 pairs; match kvHeads·pairs.
      const work = (kvHeads * causalPairs(chunks)) / base.model.nKvHeads;
      const n = (Math.sqrt(1 + 8 * work) - 1) / 2;
      const r = lookup(table.tokens, table.seconds, n,
        (x) => base.prefillAttention(device, [{ tokens: x, context: 0 }], base.model.nKvHeads).seconds);
      return withSource({ prefill_attn: r.v }, { prefill_attn: r.source });
    },

    decodeAttention(device, headTokens, heads) {
      const fit = byDevice.get(device.name)?.decode;
      if (fit === undefined) {
        const est = base.decodeAttention(device, headTokens, heads);
        return withSource(est.parts, sourceAll(est, 'roofline'));
      }
      if (heads === 0) return withSource({}, {});
      return withSource(
        { overhead: fit.fixed + fit.perHead * heads, decode_attn: fit.perHeadToken * headTokens },
        { overhead: 'fit', decode_attn: 'fit' },
      );
    },

    allReduce(link, bytes, ranks) {
      const p = linkFor(link);
      const est = base.allReduce(link, bytes, ranks);
      if (p === undefined || est.seconds === 0) return withSource(est.parts, sourceAll(est, 'roofline'));
      const parts = ringAllReduceParts({ ...link, latency: p.latency, bandwidth: p.bandwidth }, bytes, ranks);
      return withSource(parts, { latency: 'fit', transfer: 'fit' });
    },

    sendRecv(link, bytes) {
      const est = base.sendRecv(link, bytes); // also validates bytes
      const p = linkFor(link);
      if (p === undefined) return withSource(est.parts, sourceAll(est, 'roofline'));
      const t = interpolate(p.bytes, p.seconds, bytes, mode);
      if (t === undefined) {
        return withSource({ latency: p.latency, transfer: bytes / p.bandwidth }, { latency: 'fit', transfer: 'fit' });
      }
      const latency = Math.min(p.latency, t);
      return withSource({ latency, transfer: t - latency }, { latency: 'table', transfer: 'table' });
    },

    stepOverhead(device) {
      return byDevice.get(device.name)?.stepOverhead ?? base.stepOverhead?.(device) ?? 0;
    },

    denseInStep(device, tokens, localShare) {
      const f = byDevice.get(device.name)?.denseInStep;
      if (f === undefined) return base.denseInStep?.(device, tokens, localShare) ?? 1;
      const at = (ys: readonly number[]): number => {
        const x = Math.min(Math.max(tokens, f.tokens[0]!), f.tokens[f.tokens.length - 1]!);
        return interpolate(f.tokens, ys, x, mode)!;
      };
      const share = Math.min(1, Math.max(0, localShare));
      return at(f.remote) + (at(f.local) - at(f.remote)) * share;
    },

    coldStep(device, idle, sincePrefill) {
      const c = byDevice.get(device.name)?.coldSteps;
      if (c === undefined) return base.coldStep?.(device, idle, sincePrefill) ?? 0;
      return wakeUp(c, idle) + (sincePrefill !== undefined ? c.afterPrefill[sincePrefill] ?? 0 : 0);
    },

    attentionInStep(device) {
      return byDevice.get(device.name)?.attentionInStep ?? base.attentionInStep?.(device) ?? { perHead: 0, perHeadToken: 0 };
    },

    prefillAttentionInStep(device, tokens) {
      const f = byDevice.get(device.name)?.prefillInStep;
      if (f === undefined) return base.prefillAttentionInStep?.(device, tokens) ?? 1;
      const x = Math.min(Math.max(tokens, f.tokens[0]!), f.tokens[f.tokens.length - 1]!);
      return interpolate(f.tokens, f.factor, x, mode)!;
    },

    messagePerSequence(device) {
      return byDevice.get(device.name)?.messagePerSequence ?? base.messagePerSequence?.(device) ?? { step: 0, attend: 0 };
    },

    migrateHead(device, link, bytes) {
      const m = byDevice.get(device.name)?.migration;
      if (m === undefined) return base.migrateHead?.(device, link, bytes);
      // The head's KV crosses the link twice (exported, then imported).
      return Math.max(0, m.perHead + 2 * (this.sendRecv(link, bytes).seconds - this.sendRecv(link, m.bytes).seconds));
    },

    sampling(device, kind) {
      return byDevice.get(device.name)?.sampling?.[kind] ?? base.sampling?.(device, kind) ?? 0;
    },

    migrationStep(device) {
      return byDevice.get(device.name)?.migration?.perStep ?? base.migrationStep?.(device) ?? 0;
    },

    engineStep(device, sequences, sincePrefill) {
      const e = byDevice.get(device.name)?.engineStep;
      if (e === undefined) return base.engineStep?.(device, sequences, sincePrefill) ?? 0;
      return e.fixed + e.perSequence * sequences + (sincePrefill !== undefined ? e.afterPrefill?.[sincePrefill] ?? 0 : 0);
    },

    servingEvents(device) {
      return byDevice.get(device.name)?.serving ?? base.servingEvents?.(device) ?? NO_SERVING_EVENTS;
    },

    weightBytes(layers, tp, extras) {
      return base.weightBytes(layers, tp, extras);
    },

    kvBytesPerHeadToken() {
      return base.kvBytesPerHeadToken();
    },
  };
}

function sourceAll(est: Estimate, s: EstimateSource): Record<string, EstimateSource> {
  const out: Record<string, EstimateSource> = {};
  for (const k of Object.keys(est.parts)) out[k] = s;
  return out;
}

/** Extra seconds of the first step after `idle` seconds idle: see createProfiledCostModel. */
function wakeUp(c: ColdSteps, idle: number): number {
  const n = c.idle.length;
  if (n === 0 || !(idle >= c.idle[0]!)) return 0;
  if (idle >= c.idle[n - 1]!) return c.wake[n - 1] ?? 0;
  let i = 0;
  while (c.idle[i + 1]! <= idle) i++;
  const f = Math.log(idle / c.idle[i]!) / Math.log(c.idle[i + 1]! / c.idle[i]!);
  return (c.wake[i] ?? 0) + f * ((c.wake[i + 1] ?? 0) - (c.wake[i] ?? 0));
}
