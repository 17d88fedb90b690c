// This process's garbage collections as the workers report them (WorkerStats.gc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcStats } from '../src/util/gc-stats.js';

test('gcStats counts the collections that garbage makes after observing starts, with their pauses', async () => {
  const before = gcStats();
  // Garbage: a few hundred MB of short-lived objects in the young generation forces scavenges.
  // Each one escapes into a small ring (overwritten soon after), so the optimizing compiler
  // cannot elide the allocations (it did once in a full run: no collection at all).
  const ring: unknown[] = new Array(1024);
  let keep = 0;
  for (let i = 0; i < 3_000_000; i++) { const o = [i, i + 1, { i }]; ring[i & 1023] = o; keep += o.length; }
  assert.ok(keep > 0);
  await new Promise((r) => setTimeout(r, 50)); // the observer's entries arrive on a later turn
  const after = gcStats();
  assert.ok(after.collections > before.collections, `collections ${before.collections} -> ${after.collections}`);
  assert.ok(after.seconds > before.seconds && after.longestSeconds > 0 && after.longestSeconds <= after.seconds);
  // A copy each time: the caller cannot change the totals.
  after.collections = -1;
  assert.ok(gcStats().collections >= 0);
});
