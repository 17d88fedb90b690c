// Owns: the engine's busy share of a trailing window of its clock (the seconds its steps ran
// over the last BUSY_WINDOW), which the cost model reads as how warm the engine's process is.
// Must not: know what a step did, or which clock it is (real and simulated engines alike).

/** Seconds of the trailing window the busy share is taken over. */
export const BUSY_WINDOW = 1;

/**
 * Steps' latencies, added in the order they start; `share(now)` is the part of
 * [now - window, now] they cover (capped at 1: a pipeline's micro-batches overlap).
 */
export class BusyWindow {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Index of the oldest step still in the window. */
  private head = 0;
  /** Seconds of the steps from `head` on, whole. */
  private total = 0;

  constructor(readonly window: number = BUSY_WINDOW) {}

  /** A step that ran from `start` for `seconds` (starts never go back). */
  add(start: number, seconds: number): void {
    this.starts.push(start);
    this.ends.push(start + seconds);
    this.total += seconds;
  }

  /** The share of the `window` seconds before `now` spent in steps, 0 to 1. */
  share(now: number): number {
    const from = now - this.window;
    while (this.head < this.ends.length && this.ends[this.head]! <= from) {
      this.total -= this.ends[this.head]! - this.starts[this.head]!;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.ends.length) {
      this.starts.splice(0, this.head);
      this.ends.splice(0, this.head);
      this.head = 0;
    }
    if (this.head >= this.ends.length) return 0;
    // Only the oldest step can straddle the window's start; steps after `now` do not exist yet.
    const cut = Math.max(0, from - this.starts[this.head]!);
    return Math.min(1, Math.max(0, (this.total - cut) / this.window));
  }
}
