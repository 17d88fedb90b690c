// What the engine queues for the front of its next step: freed requests and copied heads, with
// the per-device counts the step cost prices them by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BeforeStep } from '../src/engine/before-step.js';

test('before a step: frees count the devices that held heads, migrations their head-tokens; take empties the queue, takeFreed keeps the migrations', () => {
  const q = new BeforeStep(3);
  q.free('a', [2, 0, 1]);
  q.free('b', [0, 4, 0]);
  q.migrate({ request: 'c', head: 1, from: 'p', to: 'w2', positions: 30, rebuild: false }, 2);
  q.migrate({ request: 'c', head: 2, from: 'p', to: 'w2', positions: 30, rebuild: false }, 2);
  assert.deepEqual(q.pending.freedRequests, [1, 1, 1]);
  // Released without a step: the frees go, the migrations wait for the step.
  assert.deepEqual(q.takeFreed(), ['a', 'b']);
  assert.deepEqual(q.pending.freed, []);
  assert.deepEqual(q.pending.freedRequests, [0, 0, 0]);
  q.free('d', [1, 0, 0]);
  const w = q.take();
  assert.deepEqual(w.freed, ['d']);
  assert.deepEqual(w.freedRequests, [1, 0, 0]);
  assert.deepEqual(w.migrations.map((m) => m.head), [1, 2]);
  assert.deepEqual(w.migratedHeadTokens, [0, 0, 60]);
  assert.deepEqual(w.migratedHeads, [0, 0, 2]);
  // Taken: nothing queued, and what was taken is not touched by what comes next.
  q.free('e', [0, 0, 3]);
  assert.deepEqual(q.take(), { freed: ['e'], freedRequests: [0, 0, 1], migrations: [], migratedHeadTokens: [0, 0, 0], migratedHeads: [0, 0, 0] });
  assert.deepEqual(w.freed, ['d']);
});
