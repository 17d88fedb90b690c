// Owns: the simulated executor: a step "runs" for the time the cost model predicts, and each
// sampled request's next token is EOS exactly when it reaches its trace's output length.
// Must not: read the wall clock.

import type { CostModel } from '../cost/types.js';
import { deviceBusy, stepCost, type AttentionDevice, type DenseStage } from '../engine/step-cost.js';
import type { Executor, StepPlan, StepResult } from '../engine/types.js';

/** Token ids the simulated sampler returns. */
export const SIM_TOKEN = 3;
export const SIM_EOS = 2;

export class SimulatedExecutor implements Executor {
  private readonly generated = new Map<string, number>();
  /** Steps executed and the total simulated seconds (for events-per-second style counters). */
  steps = 0;

  /**
   * `cost` is the clock's truth (it may differ from the engine's, e.g. to study profiling
   * error); `outputLength` gives each request's generated tokens before EOS.
   */
  constructor(
    private readonly cost: CostModel,
    private readonly stages: readonly DenseStage[],
    private readonly devices: readonly AttentionDevice[],
    private readonly outputLength: ReadonlyMap<string, number>,
    /** True when the engine's cost model is this clock's (its predictions can be reused). */
    private readonly sameCost = false,
    /** Also report each device's busy seconds per step (for utilisation; ~20% more work per step). */
    private readonly busy = false,
  ) {}

  execute(step: StepPlan): Promise<StepResult> {
    this.steps++;
    // Counts persist across preemption (the sequence keeps its tokens and recomputes their KV).
    const sampled: Record<string, number> = {};
    for (const c of step.chunks) {
      if (!c.sample) continue;
      const n = (this.generated.get(c.request) ?? 0) + 1;
      const limit = this.outputLength.get(c.request) ?? Infinity;
      // The request's trace ends after `limit` tokens: the next one is EOS.
      if (n > limit) {
        sampled[c.request] = SIM_EOS;
      } else {
        sampled[c.request] = SIM_TOKEN;
        this.generated.set(c.request, n);
      }
    }
    // The engine predicted the step with its cost model; when the clock's truth is that same
    // model the prediction is the time (the computation would be repeated exactly).
    const c = this.sameCost ? step.predicted : stepCost(this.cost, this.stages, this.devices, step.shape);
    const result: StepResult = { sampled, seconds: c.seconds, interval: c.interval };
    if (this.busy) result.busy = deviceBusy(this.cost, this.stages, this.devices, step.shape);
    return Promise.resolve(result);
  }
}
