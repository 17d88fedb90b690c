// Owns: what the engine queues for the front of its next step between two steps: the requests
// whose KV the workers free first and the KV heads they copy, with the per-device counts the step
// cost prices them by. Must not: decide what to free or move (the engine and the dispatcher do).

import type { StepMigration } from './types.js';

/** The queue handed to one step (per device arrays indexed like the engine's devices). */
export interface BeforeStepWork {
  freed: string[];
  /** Per device: requests in `freed` whose heads were there. */
  freedRequests: number[];
  migrations: StepMigration[];
  /** Per device: head-tokens and heads copied to it. */
  migratedHeadTokens: number[];
  migratedHeads: number[];
}

export class BeforeStep {
  private work: BeforeStepWork;

  constructor(private readonly devices: number) {
    this.work = this.empty();
  }

  /** Request `id` released its KV; `counts[i]` of its heads were on device i. */
  free(id: string, counts: readonly number[]): void {
    this.work.freed.push(id);
    counts.forEach((c, i) => { if (c > 0) this.work.freedRequests[i]!++; });
  }

  /** A head's KV (`m.positions` positions) copied to device index `to` before the step. */
  migrate(m: StepMigration, to: number): void {
    this.work.migrations.push(m);
    this.work.migratedHeadTokens[to]! += m.positions;
    this.work.migratedHeads[to]!++;
  }

  /** What is queued so far, without taking it (the next step's shape). */
  get pending(): Readonly<BeforeStepWork> {
    return this.work;
  }

  /** Takes everything queued (for a step), leaving the queue empty. */
  take(): BeforeStepWork {
    const w = this.work;
    this.work = this.empty();
    return w;
  }

  /** Takes only the freed requests (released without a step); queued migrations stay. */
  takeFreed(): string[] {
    const ids = this.work.freed;
    this.work = { ...this.work, freed: [], freedRequests: new Array<number>(this.devices).fill(0) };
    return ids;
  }

  private empty(): BeforeStepWork {
    const zeros = (): number[] => new Array<number>(this.devices).fill(0);
    return { freed: [], freedRequests: zeros(), migrations: [], migratedHeadTokens: zeros(), migratedHeads: zeros() };
  }
}
