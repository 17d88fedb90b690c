// Owns: the predicted duration of one engine step from the cost model: dense layers over the
// pipeline stages, prefill attention on the primaries, decode attention on every device that
// holds heads (with its network traffic), KV shipped after prefill, and migrations copied before
// the step; and, for real serving by worker processes (stages with an `engineLink`), that
// runtime's step: the engine's message to each stage and back, every device attending its own
// heads in prefill as in decode, migrations as round trips. The simulated executor advances its
// clock by this; the engine records it as the prediction of every real step. Must not: hold state.

import type { CostModel, PrefillChunk, ServingEvents } from '../cost/types.js';
import type { DeviceSpec, LinkSpec } from '../hardware/types.js';

/** One pipeline stage of the dense path (a TP group running `layers` layers). */
export interface DenseStage {
  spec: DeviceSpec;
  tp: number;
  layers: number;
  /** Link inside the stage (all-reduce). */
  hostLink: LinkSpec;
  /** Link to the next stage (undefined for the last). */
  nextLink?: LinkSpec;
  /**
   * Real serving by worker processes (runtime/; absent in the GPU simulator): the link between
   * the engine and this stage's ranks. Each step's message (token ids, positions, every
   * sequence's head owners; hidden states into a later stage) crosses it and the reply (hidden
   * states, or the sampled ids from the last stage) comes back, stage after stage through the
   * engine, so `nextLink` is not used. In that runtime the heads placed off the primaries are
   * attended by their owners in prefill as in decode (q, k, v sent every layer, so no KV is
   * shipped after the step), and each migrated head is copied by three round trips (export,
   * import, drop) one after another.
   */
  engineLink?: LinkSpec;
  /**
   * With `engineLink`: cores the attention of one layer gets, all devices together (absent:
   * every device computes at once, as on separate hosts). The local cluster's processes share
   * this machine's cores and, each woken by the primary's message, in effect take turns: 1.
   */
  attentionCores?: number;
}

/** A device that holds KV heads, as the step cost sees it. */
export interface AttentionDevice {
  spec: DeviceSpec;
  /** Primaries compute attention for their heads with no network traffic. */
  primary: boolean;
  /** Link to the primaries. */
  link: LinkSpec;
}

/** The shape of one step: what the cost depends on. */
export interface StepShape {
  prefill: PrefillChunk[];
  decodeTokens: number;
  /** Rows needing logits (sampled chunks). */
  sampledRows: number;
  /** Of those, rows drawn with a temperature (every token a candidate) and with top-k or top-p too (absent: every row greedy). */
  sampledBy?: { plain: number; truncated: number };
  /** Per attention device: (request, KV head) pairs of decode tokens in this step, and their head-tokens. */
  decodeHeads: number[];
  decodeHeadTokens: number[];
  /** Per attention device: KV head-tokens of prefilled positions shipped to it after the step. */
  shippedHeadTokens: number[];
  /** KV head-tokens copied by migrations before the step, per link (device index of the destination). */
  migratedHeadTokens: number[];
  /** Heads moved by those migrations, per destination device (absent: one move per destination with head-tokens). */
  migratedHeads?: number[];
  /** Per device: requests whose KV the step frees there first (finished, preempted, aborted). */
  freedRequests?: number[];
  /**
   * Seconds since the previous step's issue interval ended (0: issued back to back; Infinity:
   * the first step). Real serving by worker processes costs the wake-up after an idle.
   */
  idle?: number;
  /** Steps since the last step with prefill tokens (0: the previous one had some; undefined: none yet). */
  sincePrefill?: number;
  /**
   * The engine's busy share of the last second before the step (engine/busy-window.ts; undefined:
   * not known). Real serving: the engine's own work between steps runs slower the idler it has been.
   */
  recentBusy?: number;
  /** Requests admitted into this step (their first chunk: heads just placed). */
  admitted?: number;
}

export interface StepCost {
  /** Latency of the step: from issue until its tokens are out (all stages, one after another). */
  seconds: number;
  /**
   * Issue interval: how long until the pipeline takes the next micro-batch (the busiest stage's
   * time, plus transfers that hold the pipeline). Equals `seconds` with one stage.
   */
  interval: number;
  parts: Record<string, number>;
}

/**
 * Step latency = Σ stages (layers x (dense + all-reduces + prefill attention + decode attention
 * per layer) + hop) + LM head + KV shipping + migrations; the issue interval of a pipelined
 * engine is the busiest stage (plus the transfers). Decode attention per layer is the slowest
 * device's time (devices work in parallel); network per layer: one message out, one back.
 */
export function stepCost(cost: CostModel, stages: readonly DenseStage[], devices: readonly AttentionDevice[], s: StepShape): StepCost {
  if (stages.some((st) => st.engineLink !== undefined)) return runtimeStepCost(cost, stages, devices, s);
  const m = cost.model;
  const act = cost.precision.activation;
  const tokens = s.decodeTokens + s.prefill.reduce((a, c) => a + c.tokens, 0);
  const group = m.nHeads / m.nKvHeads;
  let attnLayer = 0;
  devices.forEach((d, i) => {
    const heads = s.decodeHeads[i] ?? 0;
    if (heads === 0) return;
    let t = cost.decodeAttention(d.spec, s.decodeHeadTokens[i] ?? 0, heads).seconds;
    if (!d.primary) {
      t += cost.sendRecv(d.link, heads * (group + 2) * m.headDim * act).seconds + cost.sendRecv(d.link, heads * group * m.headDim * act).seconds;
    }
    attnLayer = Math.max(attnLayer, t);
  });
  let dense = 0, allReduce = 0, prefillAttn = 0, hops = 0, decodeAttn = 0, lmHead = 0;
  let busiest = 0;
  stages.forEach((st, i) => {
    let stage = 0;
    if (tokens > 0) {
      const d = st.layers * cost.denseLayer(st.spec, tokens, st.tp).seconds;
      const ar = st.tp > 1 ? st.layers * 2 * cost.allReduce(st.hostLink, tokens * m.dim * act, st.tp).seconds : 0;
      const hop = st.nextLink ? cost.sendRecv(st.nextLink, tokens * m.dim * act).seconds : 0;
      dense += d; allReduce += ar; hops += hop;
      stage += d + ar + hop;
    }
    if (s.prefill.length > 0) {
      const p = st.layers * cost.prefillAttention(st.spec, s.prefill, m.nKvHeads / st.tp).seconds;
      prefillAttn += p;
      stage += p;
    }
    const a = attnLayer * st.layers; // this stage's layers wait for their heads' attention
    decodeAttn += a;
    stage += a;
    if (i === stages.length - 1 && s.sampledRows > 0) {
      lmHead = cost.lmHead(st.spec, s.sampledRows, st.tp).seconds;
      stage += lmHead;
    }
    busiest = Math.max(busiest, stage);
  });
  let shipping = 0, migration = 0;
  const perHeadToken = cost.kvBytesPerHeadToken();
  devices.forEach((d, i) => {
    if (d.primary) return;
    const shipped = s.shippedHeadTokens[i] ?? 0;
    if (shipped > 0) shipping = Math.max(shipping, cost.sendRecv(d.link, shipped * perHeadToken).seconds);
    const moved = s.migratedHeadTokens[i] ?? 0;
    if (moved > 0) migration = Math.max(migration, cost.sendRecv(d.link, moved * perHeadToken).seconds);
  });
  const parts = { dense, all_reduce: allReduce, prefill_attention: prefillAttn, decode_attention: decodeAttn, pipeline_hops: hops, lm_head: lmHead, kv_shipping: shipping, migration };
  return { seconds: Object.values(parts).reduce((a, b) => a + b, 0), interval: busiest + shipping + migration, parts };
}

/** JSON bytes of one sequence's entry in a step message, besides its head owners. */
const SEQUENCE_META_BYTES = 48;
/** JSON bytes of one head owner's id in a step message (a quoted device id and a comma). */
const OWNER_META_BYTES = 10;
/** JSON bytes of one sampled row's sampling parameters in a step message. */
const SAMPLING_META_BYTES = 16;
/** JSON bytes of a stage's reply besides its tensors (the timing breakdown). */
const REPLY_META_BYTES = 96;
/** Bytes of a free message (a few sequence numbers). */
const FREE_MESSAGE_BYTES = 64;

/**
 * The step of real serving by worker processes (runtime/primary.ts, runtime/cluster-executor.ts):
 *
 *   Σ stages [ engine → stage message + reply + the stage's step overhead (cost.stepOverhead)
 *              + layers x (dense + all-reduces + max over devices of one layer's attention) ]
 *   + LM head + migrations (before the step, one head after another)
 *   + frees of finished requests' KV on attention devices (before the step, a round trip to each
 *     device holding some, in parallel: the longest plus half of each other; the primaries'
 *     frees go ahead of the step on its connection and are not waited for)
 *   + a cold step's extra (cost.coldStep: after an idle; a decode step soon after a prefill)
 *
 * with the dense work and the LM head as a worker runs them inside a step (cost.denseInStep: the
 * tables x a factor at the step's rows, larger the more of the attention the primary does itself),
 * and the next step is issued after the engine's own work on this one (cost.engineStep, more
 * right after a prefill, and cost.servingEvents' `step`, more after an idle second: servingStepAt,
 * and its `admitted` for each request admitted into it),
 * so the issue interval is the latency plus that.
 *
 * One layer's attention on a device is its decode attention plus its share of the prefill
 * attention (the chunks' heads it holds); on the primaries its decode attention also reads KV the
 * dense work evicted from the caches since the last layer (cost.attentionInStep, per head and per
 * head-token), and its prefill attention runs over its table by a factor at the step's prompt
 * tokens (cost.prefillAttentionInStep);
 * off the primaries add its q, k, v out and its output
 * back for every (head, token) it holds in the step, what each sequence adds to the call
 * (cost.messagePerSequence; the step message pays its own per sequence), and what the device adds to each call
 * (cost.attendDelay: an emulated slow device's sleep). The primaries' heads are split over the
 * stage's tensor-parallel ranks. Devices work in parallel (the layer takes the slowest), but
 * their computing together takes at least the sum of their compute over the cores they share
 * (attentionCores), plus the longest messages.
 */
function runtimeStepCost(cost: CostModel, stages: readonly DenseStage[], devices: readonly AttentionDevice[], s: StepShape): StepCost {
  const m = cost.model;
  const act = cost.precision.activation;
  const group = m.nHeads / m.nKvHeads;
  const prefillTokens = s.prefill.reduce((a, c) => a + c.tokens, 0);
  const tokens = s.decodeTokens + prefillTokens;
  const sequences = s.decodeTokens + s.prefill.length;
  // KV heads of the prefill chunks each device holds (head-tokens / tokens: exact when every chunk is split alike).
  const prefillHeads = devices.map((d, i) => (d.primary || prefillTokens === 0 ? 0 : (s.shippedHeadTokens[i] ?? 0) / prefillTokens));
  const localPrefillHeads = Math.max(0, m.nKvHeads - prefillHeads.reduce((a, b) => a + b, 0));
  // The share of the step's (head, token) attention rows the primaries attend themselves: their
  // attention between the dense ops slows those (cost.denseInStep).
  const rows = s.decodeHeads.reduce((a, b) => a + b, 0) + m.nKvHeads * prefillTokens;
  const localRows = devices.reduce((a, d, i) => a + (d.primary ? s.decodeHeads[i] ?? 0 : 0), 0) + localPrefillHeads * prefillTokens;
  const localShare = rows > 0 ? localRows / rows : 0;
  let attention = 0, dense = 0, allReduce = 0, lmHead = 0, sampling = 0, engine = 0, wake = 0;
  const perSequence = cost.messagePerSequence?.(stages[0]!.spec) ?? { step: 0, attend: 0 };
  const kvInStep = cost.attentionInStep?.(stages[0]!.spec) ?? { perHead: 0, perHeadToken: 0 };
  stages.forEach((st, si) => {
    // Per device: its attention compute, and off the primaries its messages and added delay.
    let computeSum = 0, slowest = 0, network = 0, networkSum = 0, busy = 0;
    devices.forEach((d, i) => {
      const heads = s.decodeHeads[i] ?? 0;
      const headTokens = s.decodeHeadTokens[i] ?? 0;
      if (d.primary) {
        const decode = heads > 0 ? Math.max(0, cost.decodeAttention(d.spec, headTokens / st.tp, heads / st.tp).seconds + (kvInStep.perHead * heads + kvInStep.perHeadToken * headTokens) / st.tp) : 0;
        const prefill = prefillTokens > 0 && localPrefillHeads > 0
          ? cost.prefillAttention(st.spec, s.prefill, localPrefillHeads / st.tp).seconds * (cost.prefillAttentionInStep?.(st.spec, prefillTokens) ?? 1) : 0;
        const local = decode + prefill;
        computeSum += local * st.tp;
        if (local > 0) busy += st.tp;
        slowest = Math.max(slowest, local);
        return;
      }
      const pairs = heads + (s.shippedHeadTokens[i] ?? 0); // (head, token) pairs sent to d this layer
      if (pairs === 0) return;
      const compute = (heads > 0 ? cost.decodeAttention(d.spec, headTokens, heads).seconds : 0)
        + (prefillHeads[i]! > 0 ? cost.prefillAttention(d.spec, s.prefill, prefillHeads[i]!).seconds : 0);
      // Sequences with heads here: at most one per pair, at most every sequence of the step.
      const seqs = Math.min(sequences, heads + prefillHeads[i]! * s.prefill.length);
      const messages = cost.sendRecv(d.link, pairs * (group + 2) * m.headDim * act).seconds + cost.sendRecv(d.link, pairs * group * m.headDim * act).seconds
        + seqs * perSequence.attend;
      const delay = cost.attendDelay?.(d.spec, compute) ?? 0;
      computeSum += compute;
      network = Math.max(network, messages);
      networkSum += messages;
      busy++;
      slowest = Math.max(slowest, compute + delay + messages);
    });
    // Devices in parallel (the slowest one), unless they share fewer cores than they need: then
    // their compute adds up over the cores, and so does the CPU half of every round trip but the
    // longest (handling a message; the other half, waking up, overlaps).
    const cores = st.attentionCores ?? Infinity;
    const shared = computeSum / cores + network + (busy > cores ? (networkSum - network) / 2 : 0);
    const layerAttention = Math.max(slowest, shared);
    const last = si === stages.length - 1;
    const inStep = tokens > 0 ? cost.denseInStep?.(st.spec, tokens, localShare) ?? 1 : 1;
    if (tokens > 0) {
      dense += st.layers * cost.denseLayer(st.spec, tokens, st.tp).seconds * inStep;
      if (st.tp > 1) allReduce += st.layers * 2 * cost.allReduce(st.hostLink, tokens * m.dim * act, st.tp).seconds;
    }
    attention += st.layers * layerAttention;
    if (last && s.sampledRows > 0) lmHead = cost.lmHead(st.spec, s.sampledRows, st.tp).seconds * inStep;
    if (last && s.sampledBy !== undefined) sampling = s.sampledBy.plain * (cost.sampling?.(st.spec, 'plain') ?? 0) + s.sampledBy.truncated * (cost.sampling?.(st.spec, 'truncated') ?? 0);
    const hidden = tokens * m.dim * act;
    const message = 12 * tokens + (4 + SAMPLING_META_BYTES) * s.sampledRows + sequences * (SEQUENCE_META_BYTES + OWNER_META_BYTES * m.nKvHeads) + (si > 0 ? hidden : 0);
    const reply = REPLY_META_BYTES + (last ? 4 * s.sampledRows : hidden);
    const link = st.engineLink ?? st.hostLink;
    engine += cost.sendRecv(link, message).seconds + cost.sendRecv(link, reply).seconds + sequences * perSequence.step;
    if (tokens > 0) wake += cost.stepOverhead?.(st.spec) ?? 0;
  });
  // Each migrated head: export (a request, its KV back), import (its KV out, a reply), drop (two
  // small messages), as measured (cost.migrateHead) or as round trips over the link; and once for
  // the step, what migrating at all takes beyond them (cost.migrationStep).
  let migration = 0;
  const perHeadToken = cost.kvBytesPerHeadToken();
  devices.forEach((d, i) => {
    const moved = s.migratedHeadTokens[i] ?? 0;
    const n = s.migratedHeads?.[i] ?? (moved > 0 ? 1 : 0);
    if (n === 0) return;
    const bytes = (moved * perHeadToken) / n;
    const measured = cost.migrateHead?.(stages[0]!.spec, d.link, bytes);
    migration += n * (measured ?? 4 * cost.sendRecv(d.link, 0).seconds + 2 * cost.sendRecv(d.link, bytes).seconds);
  });
  if (migration > 0) migration += cost.migrationStep?.(stages[0]!.spec) ?? 0;
  let free = 0, freeing = 0;
  devices.forEach((d, i) => {
    if (d.primary || !((s.freedRequests?.[i] ?? 0) > 0)) return;
    const rt = cost.sendRecv(d.link, FREE_MESSAGE_BYTES).seconds + cost.sendRecv(d.link, REPLY_META_BYTES).seconds;
    free += freeing === 0 ? rt : rt / 2;
    freeing++;
  });
  const first = stages[0]!.spec;
  const cold = tokens > 0 ? cost.coldStep?.(first, s.idle ?? 0, prefillTokens === 0 ? s.sincePrefill : undefined) ?? 0 : 0;
  const parts = { dense, all_reduce: allReduce, attention, lm_head: lmHead, sampling, engine_messages: engine, step_overhead: wake, migration, free, cold };
  const seconds = Object.values(parts).reduce((a, b) => a + b, 0);
  const serving = cost.servingEvents?.(first);
  const engineWork = (cost.engineStep?.(first, sequences, prefillTokens === 0 ? s.sincePrefill : undefined) ?? 0)
    + (serving !== undefined ? servingStepAt(serving, s.recentBusy) : 0) + (s.admitted ?? 0) * (serving?.admitted ?? 0);
  return { seconds, interval: seconds + engineWork, parts };
}

/**
 * Serving's work on a step after a second in which the engine was `busy` (a share, 0 to 1):
 * `step` where it was measured (at `events.busy`) and busier, `light.step` at the light run's
 * share and idler, and between the two linear in the logarithm of the share (one collected served
 * run's gaps fell about that way with it: 62-77 us under 5%, 43 us at 20-30%, 29-31 us over 50%).
 * Without both measurements, or without `busy`: `step`.
 */
export function servingStepAt(events: ServingEvents, busy: number | undefined): number {
  const light = events.light;
  if (light === undefined || events.busy === undefined || busy === undefined || !(events.busy > light.busy) || !(light.busy > 0)) return events.step;
  if (busy <= light.busy) return light.step;
  if (busy >= events.busy) return events.step;
  const f = Math.log(busy / light.busy) / Math.log(events.busy / light.busy);
  return light.step + f * (events.step - light.step);
}

/**
 * Compute seconds each attention device is busy in the step (parallel to `devices`), for
 * utilisation: decode attention of its heads in every layer; the primaries (one device for the
 * whole pipeline) also run the dense layers, the all-reduces, prefill attention and the LM head,
 * counted per stage and averaged over the stages (each stage's devices are busy only with their
 * own layers). Waiting and network time are not busy time.
 */
export function deviceBusy(cost: CostModel, stages: readonly DenseStage[], devices: readonly AttentionDevice[], s: StepShape): number[] {
  const m = cost.model;
  const act = cost.precision.activation;
  const tokens = s.decodeTokens + s.prefill.reduce((a, c) => a + c.tokens, 0);
  const layers = stages.reduce((a, st) => a + st.layers, 0);
  let primaryWork = 0;
  stages.forEach((st, i) => {
    if (tokens > 0) {
      primaryWork += st.layers * cost.denseLayer(st.spec, tokens, st.tp).seconds;
      if (st.tp > 1) primaryWork += st.layers * 2 * cost.allReduce(st.hostLink, tokens * m.dim * act, st.tp).seconds;
    }
    if (s.prefill.length > 0) primaryWork += st.layers * cost.prefillAttention(st.spec, s.prefill, m.nKvHeads / st.tp).seconds;
    if (i === stages.length - 1 && s.sampledRows > 0) primaryWork += cost.lmHead(st.spec, s.sampledRows, st.tp).seconds;
  });
  return devices.map((d, i) => {
    const heads = s.decodeHeads[i] ?? 0;
    const attention = heads > 0 ? layers * cost.decodeAttention(d.spec, s.decodeHeadTokens[i] ?? 0, heads).seconds : 0;
    return d.primary ? (primaryWork + attention) / Math.max(1, stages.length) : attention;
  });
}
