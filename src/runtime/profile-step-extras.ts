// Owns: measuring what a step's extras cost on a local cluster, beyond its ops: migrations as
// serving meets them (rare, after the attention worker idled) and drawing tokens with a
// temperature (against greedy, in the primary's dense part), through the runtime probe's cluster
// and step plans. Must not: start or stop the cluster (the runtime probe owns it).

import type { MigrationProfile, SamplingCostProfile } from '../cost/profile-types.js';
import type { StepPlan } from '../engine/types.js';
import type { ModelSpec } from '../model/spec.js';
import { median } from '../util/fit.js';
import { nextTurn } from '../util/turn.js';
import type { ClusterExecutor } from './cluster-executor.js';

/** Plain steps between two measured migrations (~50 ms here: the attention worker idles meanwhile, as between a served run's rare migrations). */
const STEPS_BETWEEN_MIGRATIONS = 40;
/** The migrated sequence's context, tokens (half a scaled conversation's longest). */
const MIGRATION_CONTEXT = 112;

/** Requests these probes make up (their own prefixes: unique beside the runtime probe's). */
let extraRequests = 0;

/**
 * Migrations as serving meets them: rare, each after tens of plain steps (STEPS_BETWEEN_MIGRATIONS
 * of another sequence, on the primary) that leave the attention worker idle, so the first message
 * wakes it and its export and import run cold. In turn: one head of a sequence at half the long
 * context moved to the worker, the same head back, every head moved, every head back. A head's
 * copy is what every head adds over one, per further head; the step's once is what one head costs
 * beyond its copy (here 0.2-0.5 ms once and 0.35-0.6 ms a head at 112 tokens, where the same
 * heads moved back to back took ~0.3 ms a head; served runs' migration steps took 1.0-1.6 ms a
 * head, 3-7 heads a step, with two attention workers and the HTTP server on the same cores).
 */
export async function measureMigrations(
  spec: ModelSpec, plan: (request: string, owner: string, start: number, count: number) => StepPlan,
  ex: ClusterExecutor, quick: boolean,
): Promise<MigrationProfile> {
  const between = quick ? 10 : STEPS_BETWEEN_MIGRATIONS;
  const context = Math.min(MIGRATION_CONTEXT, Math.floor(spec.contextLength / 2));
  // Four steps of the moved sequence a round: as many rounds as its context leaves room for.
  const rounds = Math.max(1, Math.min(quick ? 2 : 8, Math.floor((spec.contextLength - 1 - context) / 4)));
  const prompt = Math.min(32, Math.floor(spec.contextLength / 2)); // the other sequence's
  const H = spec.nKvHeads;
  const move = `move-${extraRequests++}`;
  let other = `between-${extraRequests++}`, pos = 0;
  const plainStep = async (): Promise<void> => {
    if (pos === 0 || pos >= spec.contextLength - 1) {
      if (pos > 0) await ex.release([other]);
      other = `between-${extraRequests++}`;
      await ex.execute(plan(other, 'primary', 0, prompt));
      pos = prompt;
    }
    await ex.execute(plan(other, 'primary', pos++, 1));
    await nextTurn();
  };
  await ex.execute(plan(move, 'primary', 0, context));
  let at = context;
  const timed = new Map<number, number[]>([[1, []], [H, []]]);
  for (let r = 0; r < rounds; r++) {
    for (const [heads, from, to] of [[1, 'primary', 'attn'], [1, 'attn', 'primary'], [H, 'primary', 'attn'], [H, 'attn', 'primary']] as const) {
      for (let i = 0; i < between; i++) await plainStep();
      const step = plan(move, 'primary', at, 1);
      step.headDevices[move] = Array.from({ length: H }, (_, h) => (h < heads ? to : 'primary'));
      step.migrations = Array.from({ length: heads }, (_, head) => ({ request: move, head, from, to, positions: at, rebuild: false }));
      const res = await ex.execute(step);
      timed.get(heads)!.push(res.parts?.['migrate'] ?? NaN);
      at++;
      await nextTurn();
    }
  }
  await ex.release([move, other]);
  const one = median(timed.get(1)!), all = median(timed.get(H)!);
  const perHead = H > 1 ? Math.max(0, (all - one) / (H - 1)) : one;
  const bytes = (context + rounds * 2) * 2 * spec.headDim * spec.nLayers * 4; // a head's KV at the middle of the runs
  return { perHead, bytes, perStep: Math.max(0, one - perHead) };
}

/**
 * What drawing a token costs beyond greedy, in real steps: one-token decode steps of one sequence
 * (every head on the primary, each step fed the token the last one drew, so the logits are the
 * model's own continuation: top-p keeps few candidates of a peaked distribution), drawn greedily,
 * with a temperature (0.8, every token a candidate: `plain`) and with top-p 0.9 as well
 * (`truncated`), the three in turn round after round (the machine's speed moves between rounds);
 * the primary's dense part (the sampling is timed in it) over greedy's, medians (here 0.04-0.05
 * and 0.05-0.065 ms for 4,096 tokens; served one-sequence steps' dense part ran 0.07-0.17 ms with
 * a temperature and 0.02-0.14 ms with top-p over greedy runs beside them, three pairs each).
 */
export async function measureSampling(
  spec: ModelSpec, plan: (request: string, owner: string, start: number, count: number) => StepPlan,
  ex: ClusterExecutor, quick: boolean,
): Promise<SamplingCostProfile> {
  const context = Math.min(32, Math.floor(spec.contextLength / 2));
  const modes: { kind: 'greedy' | 'plain' | 'truncated'; sampling?: { temperature: number; topK: number; topP: number } }[] = [
    { kind: 'greedy' }, { kind: 'plain', sampling: { temperature: 0.8, topK: 0, topP: 1 } }, { kind: 'truncated', sampling: { temperature: 0.8, topK: 0, topP: 0.9 } },
  ];
  const dense = new Map<string, number[]>(modes.map((m) => [m.kind, []]));
  let id = '', pos = spec.contextLength, token = 1;
  for (let r = 0; r < (quick ? 3 : 12); r++) {
    for (const m of modes) {
      for (let i = 0; i < 8; i++) {
        if (pos >= spec.contextLength - 1) { // a fresh sequence when the context is full
          if (id !== '') await ex.release([id]);
          id = `sampling-${extraRequests++}`;
          token = (await ex.execute(plan(id, 'primary', 0, context))).sampled[id] ?? 1;
          pos = context;
        }
        const step = plan(id, 'primary', pos++, 1);
        step.chunks = step.chunks.map((c) => ({ ...c, tokens: [token], ...(m.sampling !== undefined ? { sampling: { ...m.sampling, seed: r } } : {}) }));
        const res = await ex.execute(step);
        token = res.sampled[id] ?? 1;
        if (i >= 2) dense.get(m.kind)!.push(res.parts?.['dense'] ?? NaN); // the first steps after a change of mode settle
        await nextTurn();
      }
    }
  }
  await ex.release([id]);
  const greedy = median(dense.get('greedy')!);
  const over = (kind: string): number => Math.max(0, median(dense.get(kind)!) - greedy);
  return { plain: over('plain'), truncated: over('truncated') };
}
