// The engine's busy share of the trailing second, and serving's per-step work at a share between
// the light run's and the main run's (the cost model's reading of it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BusyWindow } from '../src/engine/busy-window.js';
import { servingStepAt } from '../src/engine/step-cost.js';

const near = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('busy window: the share of the last second covered by steps, the oldest cut at the window, capped at 1', () => {
  const w = new BusyWindow(1);
  near(w.share(5), 0, 'nothing yet');
  w.add(0, 0.2);
  w.add(0.5, 0.1);
  near(w.share(0.6), 0.3, 'both whole');
  near(w.share(1.1), 0.2, 'the first cut at 0.1: 0.1 of it and all of the second');
  near(w.share(1.25), 0.1, 'the first gone');
  near(w.share(1.55), 0.05, 'the second cut');
  near(w.share(3), 0, 'all gone');
  // Overlapping latencies (a pipeline's micro-batches in flight): never more than the window.
  for (let t = 3; t < 4; t += 0.1) w.add(t, 0.3);
  near(w.share(4), 1, 'capped');
  // Thousands of steps, the share asked before each is added (as the engine does): half of every millisecond.
  const many = new BusyWindow(1);
  for (let i = 0; i < 5000; i++) {
    if (i > 1000 && i % 997 === 0) near(many.share(i * 1e-3), 0.5, `before step ${i}`);
    many.add(i * 1e-3, 0.5e-3);
  }
});

test('serving per step: the main run\'s figure when busier than it, the light run\'s when idler, log-linear between', () => {
  const events = { admitted: 0, finished: 0, arrival: 0, step: 30e-6, busy: 0.6, light: { step: 75e-6, busy: 0.06 } };
  near(servingStepAt(events, 0.9), 30e-6, 'busier than the main run');
  near(servingStepAt(events, 0.6), 30e-6, 'at the main run');
  near(servingStepAt(events, 0.01), 75e-6, 'idler than the light run');
  near(servingStepAt(events, 0), 75e-6, 'idle');
  // Halfway in log share from 0.06 to 0.6 is 0.06 x 10^0.5.
  near(servingStepAt(events, 0.06 * Math.sqrt(10)), 52.5e-6, 'halfway in log share');
  // Older profiles (no light run, or no busy share), or a step whose share is not known: `step`.
  near(servingStepAt({ ...events, light: undefined } as never, 0.01), 30e-6, 'no light run');
  near(servingStepAt({ admitted: 0, finished: 0, arrival: 0, step: 30e-6, light: { step: 75e-6, busy: 0.06 } }, 0.01), 30e-6, 'no busy share');
  near(servingStepAt(events, undefined), 30e-6, 'share unknown');
  // A light run no idler than the main one says nothing about idling.
  near(servingStepAt({ ...events, light: { step: 75e-6, busy: 0.7 } }, 0.01), 30e-6, 'light run as busy');
});
