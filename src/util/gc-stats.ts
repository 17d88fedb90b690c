// Owns: this process's garbage collections as V8 reports them (count, total and longest pause),
// observed from the first call on. Must not: trigger or tune collections.

import { PerformanceObserver } from 'node:perf_hooks';

/** Collections since observing began (the first gcStats() call), seconds of pause in all and in the longest. */
export interface GcStats {
  collections: number;
  seconds: number;
  longestSeconds: number;
}

const totals: GcStats = { collections: 0, seconds: 0, longestSeconds: 0 };
let observer: PerformanceObserver | undefined;

/** Starts observing this process's collections (once) and returns the totals so far. */
export function gcStats(): GcStats {
  if (observer === undefined) {
    observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        totals.collections++;
        totals.seconds += e.duration / 1000;
        totals.longestSeconds = Math.max(totals.longestSeconds, e.duration / 1000);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
  }
  return { ...totals };
}
