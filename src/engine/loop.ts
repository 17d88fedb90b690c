// Owns: driving an engine in real time: steps back to back while there is work, sleeping
// until a request arrives when there is none, and reporting a step that failed. Must not:
// know about HTTP, workers or sampling (the engine and its executor do that).

import type { Engine } from './engine.js';
import type { EngineRequest } from './types.js';

/** Where real time comes from (a test may pass a fake). */
export interface Clock {
  /** Seconds since some fixed origin. */
  now(): number;
}

export const MONOTONIC: Clock = { now: () => performance.now() / 1000 };

export interface LoopHooks {
  /**
   * A step threw (a worker died, a bug). The loop has already stopped stepping; the hook decides
   * what becomes of the requests (fail a device and go on, or abort everything) and returns
   * whether the loop should keep running.
   */
  onStepError(error: unknown): boolean | Promise<boolean>;
  /** After every step (metrics, cluster view). */
  onStep?(): void;
}

/**
 * Runs `engine.step` on the real clock. One loop per engine; `submit` wakes it. `stop()`
 * finishes the step in flight and resolves `done`.
 */
export class EngineLoop {
  private wake: (() => void) | undefined;
  private stopped = false;
  private running = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(readonly engine: Engine, private readonly hooks: LoopHooks, readonly clock: Clock = MONOTONIC) {
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  /** Seconds on the loop's clock (what request arrival times use). */
  now(): number {
    return this.clock.now();
  }

  /** Starts the loop (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  submit(req: EngineRequest): void {
    this.engine.submit(req);
    this.poke();
  }

  /** Wakes a sleeping loop (after an abort, a device change, a submit). */
  poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    if (!this.running) this.resolveDone();
    return this.done;
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        if (!this.engine.hasWork()) {
          try {
            await this.engine.releaseFreed();
          } catch (e) {
            if (!(await this.hooks.onStepError(e))) break;
          }
          if (this.stopped || this.engine.hasWork()) continue;
          await new Promise<void>((r) => { this.wake = r; });
          continue;
        }
        let issued: number | undefined;
        try {
          issued = await this.engine.step(this.clock.now());
        } catch (e) {
          if (!(await this.hooks.onStepError(e))) break;
          continue;
        }
        this.hooks.onStep?.();
        // Nothing could be scheduled (the engine dropped what can never fit): wait for news.
        if (issued === undefined && this.engine.hasWork()) await new Promise<void>((r) => { this.wake = r; setTimeout(r, 50); });
        // Let I/O (new requests, aborts, socket data) in between steps.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
      this.resolveDone();
    }
  }
}
