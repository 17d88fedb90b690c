// Owns: running a workload through engines on a virtual clock (one engine per replica; requests
// routed round-robin; a Splitwise deployment's pools through splitwise.ts), and the systems
// compared: Hetis, its ablations and the baselines, each a deployment plus a policy on the same
// engine and cost model.
// Must not: read the wall clock or do I/O.

import { HetisError } from '../util/errors.js';
import type { Cluster } from '../hardware/types.js';
import type { CostModel } from '../cost/types.js';
import { Engine, type EngineConfig } from '../engine/engine.js';
import type { EngineRequest, RequestRecord, StepRecord } from '../engine/types.js';
import { planDeployment } from '../planner/plan.js';
import { evaluate } from '../planner/evaluate.js';
import type { DeploymentPlan, PlannerOptions, WorkloadSummary } from '../planner/types.js';
import { DEFAULT_TUNING, engineConfigs, type EngineTuning } from './deploy.js';
import { SimulatedExecutor } from './executor.js';
import { phaseConfigs, runSplitwise, splitwiseSystem } from './splitwise.js';

export const SYSTEMS = ['hetis', 'hetis-no-attn-workers', 'hetis-static-split', 'hetis-no-redispatch', 'homogeneous', 'hexgen', 'splitwise'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface RunResult {
  records: RequestRecord[];
  steps: StepRecord[];
  /** Engine steps executed (events of the virtual clock, with arrivals). */
  events: number;
}

/**
 * Runs `requests` (sorted by arrival) through one engine per config on a virtual clock. `truth`
 * is the cost model of the clock (defaults to each config's own). `utilisation`: steps record
 * each device's busy seconds (StepRecord.busy). Configs of a Splitwise
 * deployment (tagged with their pool) run as its two pools instead (splitwise.ts).
 */
export async function runEngines(
  configs: readonly EngineConfig[], requests: readonly EngineRequest[], truth?: CostModel,
  onProgress?: (finished: number, total: number) => void, opts: { utilisation?: boolean } = {},
): Promise<RunResult> {
  const phased = phaseConfigs(configs);
  if (phased !== undefined) return runSplitwise(phased, requests, truth, onProgress);
  const records: RequestRecord[] = [];
  const steps: StepRecord[] = [];
  let events = 0;
  const outputs = new Map(requests.map((r) => [r.id, r.outputLength ?? r.maxTokens]));
  for (const [e, cfg] of configs.entries()) {
    const mine = requests.filter((_, i) => i % configs.length === e);
    const exec = new SimulatedExecutor(truth ?? cfg.cost, cfg.stages, cfg.devices, outputs, truth === undefined || truth === cfg.cost, opts.utilisation === true);
    const engine = new Engine(cfg, exec);
    // A request arriving while a step runs costs the server's handling of it (real serving's
    // profiled cost; nothing otherwise): the step it lands in ends that much later.
    const arrivalCost = cfg.cost.servingEvents?.(cfg.stages[0]!.spec).arrival ?? 0;
    let t = 0;
    let i = 0;
    while (i < mine.length || engine.hasWork()) {
      while (i < mine.length && mine[i]!.arrival <= t) engine.submit(mine[i++]!);
      events++;
      if (!engine.hasWork()) { t = mine[i]!.arrival; continue; }
      const dt = await engine.step(t);
      if (onProgress !== undefined && events % 2000 === 0) onProgress(records.length + engine.records.length, requests.length);
      if (dt !== undefined) {
        let landed = 0;
        while (i + landed < mine.length && mine[i + landed]!.arrival <= t + dt) landed++;
        engine.extendLastStep(landed * arrivalCost);
        t += dt + landed * arrivalCost;
        continue;
      }
      if (i < mine.length) t = Math.max(t, mine[i]!.arrival);
      else if (!engine.hasWork()) break;
    }
    for (const r of engine.records) records.push(r); // (spreading 10^5 elements overflows the stack)
    for (const s of engine.steps) steps.push(s);
  }
  records.sort((a, b) => a.arrival - b.arrival || (a.id < b.id ? -1 : 1));
  return { records, steps, events };
}

/** The deployment and engine configs of `system` on `cluster`. */
export function systemConfigs(system: SystemName, cluster: Cluster, cost: CostModel, workload: WorkloadSummary, options: PlannerOptions, tuning: EngineTuning = DEFAULT_TUNING): { plan: DeploymentPlan; configs: EngineConfig[] } {
  if (system === 'splitwise') {
    // Prefill and decode pools, each replica with the full weights (splitwise-plan.ts).
    const { plan, configs } = splitwiseSystem(cluster, cost, workload, options, tuning);
    return { plan, configs };
  }
  const plan = planDeployment(cluster, cost, workload, options);
  switch (system) {
    case 'hetis':
      return { plan, configs: engineConfigs(cluster, plan, cost, tuning) };
    case 'hetis-no-attn-workers':
      return { plan, configs: engineConfigs(cluster, plan, cost, tuning, false) };
    case 'hetis-static-split':
      return { plan, configs: engineConfigs(cluster, plan, cost, { ...tuning, placement: 'memory', redispatch: { ...tuning.redispatch, enabled: false } }) };
    case 'hetis-no-redispatch':
      return { plan, configs: engineConfigs(cluster, plan, cost, { ...tuning, redispatch: { ...tuning.redispatch, enabled: false } }) };
    case 'homogeneous':
    case 'hexgen': {
      // The baseline's own layout from the planner's alternatives: the fastest tier alone
      // (homogeneous), or an asymmetric pipeline over every device with layers by speed (hexgen);
      // either way KV and attention stay on the devices that run the layers.
      const c = plan.candidates.find((x) => x.system === system);
      if (c === undefined || c.predicted === undefined) throw new HetisError('bad_input', `${system}: ${c?.reason ?? 'no layout holds the model'}`);
      const e = evaluate(system, cluster, cost, c.replicas, workload, options);
      const baseline: DeploymentPlan = { ...plan, devices: e.devices, replicas: c.replicas, predicted: c.predicted };
      return { plan: baseline, configs: engineConfigs(cluster, baseline, cost, tuning, false) };
    }
  }
}
