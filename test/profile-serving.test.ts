// What serving over HTTP adds to the engine's time: the costs read off step records (by hand-made
// records), and the probe through the real thing (an HTTP server over a local cluster running the
// built-in model, a client process), which leaves no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { ProfileFile } from '../src/cost/profile-types.js';
import type { RequestRecord, StepRecord } from '../src/engine/types.js';
import { profileLocal } from '../src/runtime/profile.js';
import { loadModel } from '../src/model/load.js';
import { measureServing, servingCosts } from '../src/server/profile-serving.js';

const MODEL = fileURLToPath(new URL('../models/hetis-kjv.gguf', import.meta.url));

/** Steps back to back: each `seconds` long, predicted `predicted` (and 10 us of the engine's work after it), then `gap` before the next. */
function steps(list: { seconds: number; predicted?: number; gap: number; prefill?: number }[]): StepRecord[] {
  let t = 0;
  return list.map((s, index) => {
    const r: StepRecord = {
      index, start: t, seconds: s.seconds, interval: s.seconds, predictedSeconds: s.predicted ?? s.seconds, predictedInterval: (s.predicted ?? s.seconds) + 10e-6,
      prefillTokens: s.prefill ?? 0, decodeTokens: 1, migrations: 0, migratedBytes: 0, kvUsedBlocks: {},
    };
    t += s.seconds + s.gap;
    return r;
  });
}

test('serving costs: admissions and finishes from the gaps after their steps, arrivals from the intervals they land in, against steps with no event', () => {
  const plain = { seconds: 1e-3, gap: 30e-6 };
  const list: { seconds: number; predicted?: number; gap: number; prefill?: number }[] = [];
  const kinds: ('none' | 'admit' | 'finish' | 'arrive')[] = [];
  for (let k = 0; k < 8; k++) {
    list.push(plain, plain); kinds.push('none', 'none');
    list.push({ seconds: 3e-3, gap: 130e-6, prefill: 16 }); kinds.push('admit');
    list.push({ seconds: 1e-3, gap: 330e-6 }); kinds.push('finish');
    list.push({ seconds: 1.5e-3, predicted: 1e-3, gap: 80e-6 }); kinds.push('arrive');
  }
  list.push(plain); kinds.push('none');
  const s = steps(list);
  const records: RequestRecord[] = [];
  s.forEach((st, i) => {
    if (kinds[i] === 'finish') records.push({ id: `f${i}`, arrival: -1, promptLength: 16, outputLength: 3, finishedAt: st.start + st.seconds, finishReason: 'length', preemptions: 0 });
    if (kinds[i] === 'arrive') records.push({ id: `a${i}`, arrival: st.start + 0.2e-3, promptLength: 16, outputLength: 3, finishedAt: 99, finishReason: 'length', preemptions: 0 });
  });
  // An idle gap (the engine waiting for work) is not the engine's work.
  const idle = steps([plain, { seconds: 1e-3, gap: 0.5 }, plain]);
  const c = servingCosts([...s, ...idle.map((x) => ({ ...x, start: x.start + 10 }))], records, 16);
  const near = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
  near(c.admitted, 100e-6, 'admitted');
  near(c.finished, 300e-6, 'finished');
  // Excess of the interval over the prediction: 1.5 ms + 80 us - 1 ms against 30 us.
  near(c.arrival, 0.55e-3, 'arrival');
  // Every step: the 30 us gap after a step with no event beyond the 10 us the engine's work was predicted.
  near(c.step!, 20e-6, 'step');
  assert.deepEqual(c.samples, { none: 16 + 1, admitted: 8, finished: 8, arrival: 8 });
  // The busy share before each no-event step: the run is shorter than the window, so every earlier
  // step's seconds over one second (the idle run's first step, ten seconds later, starts from nothing).
  const shares = s.flatMap((_, i) => (kinds[i] === 'none' && i + 1 < s.length ? [s.slice(0, i).reduce((a, x) => a + x.seconds, 0)] : []));
  const sorted = [...shares, 0].sort((a, b) => a - b);
  near(c.busy!, sorted[Math.floor(sorted.length / 2)]!, 'busy');
  // Too few steps of a kind: that cost is left at 0.
  const few = servingCosts(s.slice(0, 11), records, 16);
  assert.equal(few.admitted, 0);
  assert.equal(few.samples.admitted, 2);
  // Records without the engine's predicted interval: nothing to measure the step's part against.
  assert.equal(servingCosts(s.map(({ predictedInterval: _, ...r }) => r), records, 16).step, 0);
});

test('the serving probe through a real HTTP server, a local cluster and a client process: every cost measured, no process left', { timeout: 120_000 }, async () => {
  const { model } = loadModel(MODEL);
  // A profile of this machine to predict the probe's steps with (the quick grid is enough here).
  const profile: ProfileFile = await profileLocal({ model, quick: true, transport: false });
  const pids: number[] = [];
  const s = await measureServing({ modelPath: MODEL, profile, seconds: 1.5, onSpawn: (pid) => pids.push(pid) });
  for (const k of ['admitted', 'finished', 'arrival'] as const) {
    assert.ok(Number.isFinite(s[k]) && s[k] >= 0 && s[k] < 0.02, `${k}: ${s[k]}`);
    assert.ok(s.samples[k] >= 5, `${k} measured over ${s.samples[k]} steps`);
  }
  assert.ok(s.samples.none >= 50, `${s.samples.none} steps with no event`);
  assert.ok(s.step !== undefined && Number.isFinite(s.step) && s.step >= 0 && s.step < 0.005, `step: ${s.step}`);
  // The light run: one 16-token request at a time, 0.2 s apart, ~13 plain decode steps each.
  assert.ok(s.light !== undefined && s.light.samples >= 50, `light run: ${JSON.stringify(s.light)}`);
  assert.ok(Number.isFinite(s.light.step) && s.light.step >= 0 && s.light.step < 0.005, `light step: ${s.light.step}`);
  // It keeps the engine far less busy than the main run (short requests every 30 ms over long ones).
  assert.ok(s.busy !== undefined && s.light.busy > 0 && s.light.busy < s.busy, `busy ${s.busy}, light ${s.light.busy}`);
  // Finishing a request (the engine's bookkeeping, building and sending its response) costs
  // more than nothing on any machine.
  assert.ok(s.finished > 0, 'a finish costs something');
  assert.ok(pids.length >= 3, `processes: ${pids.join(', ')}`); // two workers, clients
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), `process ${pid} still running`);
});
