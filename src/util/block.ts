// Owns: blocking this thread for a while without spinning (the process idles, as a worker does
// between messages; `Atomics.wait` sleeps the time asked plus a near-constant wake-up, where a
// timer sleeps whole milliseconds). Must not: be called on a path that must stay responsive.

const CELL = new Int32Array(new SharedArrayBuffer(4)); // never changes: every wait runs its full time

/** Blocks for `ms` milliseconds (nothing for ms <= 0). */
export function blockFor(ms: number): void {
  if (ms > 0) Atomics.wait(CELL, 0, 0, ms);
}
