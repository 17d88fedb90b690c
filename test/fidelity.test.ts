// The simulator against real serving (scripts/fidelity.ts does the timing): a short workload runs
// on a real local cluster (the built-in model, worker processes, the HTTP server) and is replayed
// on the virtual clock with the server's engine configuration; every request finishes in both
// with the same number of tokens; saved as a study saves it, the run replays the same, through
// the study script's --replay too. `hetis simulate --cluster local` builds the engine
// configuration the server runs with. The pure parts of src/sim/local-fidelity.ts by example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { StepRecord } from '../src/engine/types.js';
import { openModel } from '../src/cli/open-model.js';
import { localClusterConfig } from '../src/cli/simulate.js';
import { parseAttentionList } from '../src/cli/serve.js';
import { profileLocal } from '../src/runtime/profile.js';
import { SERVING_TUNING } from '../src/runtime/local-devices.js';
import {
  combineRepeats, compareReplay, loadRealRun, poissonWorkload, profilePassSlots, replayRequests, repredictSteps, saveRealRun, scaledTrace, stepErrors, stepKind, targetCheck, type Comparison, type SavedRealRun,
} from '../src/sim/local-fidelity.js';
import { runLoad, startLocalServer } from '../scripts/fidelity-run.js';
import { tempDir } from './helpers/files.js';
import { repoRoot } from './helpers/shared.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const MODEL = join(repoRoot, 'models/hetis-kjv.gguf');

function step(o: Partial<StepRecord>): StepRecord {
  return { index: 0, start: 0, seconds: 0.01, interval: 0.01, predictedSeconds: 0.01, prefillTokens: 0, decodeTokens: 1, migrations: 0, migratedBytes: 0, kvUsedBlocks: {}, ...o };
}

test('stepKind and stepErrors: kinds by tokens and migrations; error = predicted / measured - 1', () => {
  assert.equal(stepKind(step({ prefillTokens: 10, decodeTokens: 0 })), 'prefill');
  assert.equal(stepKind(step({ prefillTokens: 10, decodeTokens: 2 })), 'mixed');
  assert.equal(stepKind(step({ decodeTokens: 3 })), 'decode');
  assert.equal(stepKind(step({ prefillTokens: 10, migrations: 1 })), 'migration');
  const steps = [step({ seconds: 0.01, predictedSeconds: 0.011 }), step({ seconds: 0.02, predictedSeconds: 0.018 }), step({ prefillTokens: 5, decodeTokens: 0, seconds: 0.1, predictedSeconds: 0.05 })];
  const e = stepErrors(steps);
  assert.deepEqual(e.map((x) => x.kind), ['prefill', 'decode', 'all']);
  const decode = e.find((x) => x.kind === 'decode')!;
  assert.equal(decode.steps, 2);
  assert.ok(Math.abs(decode.p10 - -0.1) < 1e-9 && Math.abs(decode.p90 - 0.1) < 1e-9);
  assert.ok(Math.abs(e.find((x) => x.kind === 'prefill')!.p50 - -0.5) < 1e-9);
});

test('combineRepeats: medians of the real runs and of their replays, how far single runs strayed, saturated when most runs were', () => {
  const run = (tpotReal: number, tpotSim: number, saturated: boolean): Comparison => ({
    requests: 10, real: undefined as never, sim: undefined as never, mismatched: [], saturated, busy: tpotReal / 10, steps: [],
    figures: [{ name: 'TPOT P50', unit: 'ms', real: tpotReal, sim: tpotSim, error: tpotSim / tpotReal - 1 }],
  });
  const steps = [[step({ seconds: 0.01, predictedSeconds: 0.009 })], [step({ seconds: 0.01, predictedSeconds: 0.012 })], [step({ seconds: 0.01, predictedSeconds: 0.01 })]];
  const c = combineRepeats([run(1.0, 1.1, false), run(1.25, 1.0, true), run(0.9, 1.05, false)], steps);
  const f = c.figures[0]!;
  assert.equal(c.repeats, 3);
  assert.equal(f.real, 1.0);
  assert.equal(f.sim, 1.05);
  assert.ok(Math.abs(f.error - 0.05) < 1e-12);
  assert.ok(Math.abs(f.spread - 0.25) < 1e-12, String(f.spread));
  assert.equal(c.saturated, false);
  assert.equal(c.busy, 0.1);
  assert.equal(c.steps.find((s) => s.kind === 'all')!.steps, 3);
  assert.ok(Math.abs(targetCheck([c]).tpot - 0.05) < 1e-12);
  assert.ok(Math.abs(targetCheck([c]).tpotSpread - 0.25) < 1e-12);
  assert.ok(Number.isNaN(targetCheck([run(1, 1, false)]).tpotSpread), 'no repeats, no spread');
  assert.equal(combineRepeats([run(1, 1, true), run(1, 1, true), run(1, 1, false)], steps).saturated, true);
});

test('profilePassSlots: the first pass before any run, the rest spread evenly to after the last layout', () => {
  assert.deepEqual(profilePassSlots(1, 2), [0]);
  assert.deepEqual(profilePassSlots(3, 2), [0, 1, 2]);
  assert.deepEqual(profilePassSlots(2, 2), [0, 2]);
  assert.deepEqual(profilePassSlots(5, 2), [0, 1, 1, 2, 2]);
  assert.deepEqual(profilePassSlots(3, 1), [0, 1, 1]);
  assert.throws(() => profilePassSlots(0, 2));
});

test('replayRequests: arrivals from 0, the client max_tokens, the generated lengths; failed requests left out', () => {
  const records = [
    { id: 'b', arrival: 12, promptLength: 5, outputLength: 7, firstTokenAt: 12.1, finishedAt: 12.5, finishReason: 'stop' as const, preemptions: 0 },
    { id: 'a', arrival: 10, promptLength: 9, outputLength: 16, firstTokenAt: 10.2, finishedAt: 11, finishReason: 'length' as const, preemptions: 0 },
    { id: 'c', arrival: 13, promptLength: 9, outputLength: 0, finishedAt: 13, finishReason: 'error' as const, preemptions: 0 },
  ];
  const r = replayRequests({ records, steps: [], maxTokens: new Map([['a', 16], ['b', 30], ['c', 4]]) });
  assert.deepEqual(r, [
    { id: 'a', arrival: 0, promptLength: 9, maxTokens: 16, outputLength: 16 },
    { id: 'b', arrival: 2, promptLength: 5, maxTokens: 30, outputLength: 7 },
  ]);
  // Requests sent with a temperature are drawn the same way in the replay (what it costs is the cost model's).
  const sampled = replayRequests({ records, steps: [], maxTokens: new Map([['a', 16], ['b', 30], ['c', 4]]), sampling: new Map([['b', { temperature: 0.8, topP: 0.9 }], ['a', { temperature: 0, topP: 1 }]]) });
  assert.equal(sampled[0]!.sampling, undefined);
  assert.deepEqual(sampled[1]!.sampling, { temperature: 0.8, topK: 0, topP: 0.9, seed: 0 });
});

test('workloads: Poisson lengths in range and fitted to the context; the trace scaled and fitted; same seed, same requests', () => {
  const p = poissonWorkload({ seed: 3, rate: 10, count: 50, prompt: [16, 128], output: [16, 128], context: 200 });
  assert.equal(p.length, 50);
  assert.equal(p[0]!.arrival, 0);
  for (const r of p) assert.ok(r.promptLength >= 1 && r.maxTokens >= 16 && r.promptLength + r.maxTokens <= 200);
  assert.deepEqual(p, poissonWorkload({ seed: 3, rate: 10, count: 50, prompt: [16, 128], output: [16, 128], context: 200 }));
  const w = { name: 't', requests: [{ id: 'x', arrival: 1, promptLength: 3000, maxTokens: 400, outputLength: 400 }, { id: 'y', arrival: 2, promptLength: 1000, maxTokens: 200, outputLength: 200 }] };
  assert.deepEqual(scaledTrace(w, 0.1, 256), [{ arrival: 1, promptLength: 216, maxTokens: 40 }, { arrival: 2, promptLength: 100, maxTokens: 20 }]);
});

test('hetis simulate --cluster local: the engine configuration hetis serve runs with (devices, capacities, stages, tuning)', async () => {
  const { model } = openModel(MODEL, undefined);
  const profile = await profileLocal({ model: model.spec, quick: true, transport: false, tokens: [1, 16] });
  {
    const file = join(tempDir('fidelity'), 'profile.json');
    writeFileSync(file, JSON.stringify(profile));
    const { config } = localClusterConfig(model.spec, { primaryKv: '16MiB', attention: '8MiB,4MiB:3', profile: file });
    const server = await startLocalServer({ modelPath: MODEL, profile, layout: { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 16 << 20 }, attention: parseAttentionList('8MiB,4MiB:3'), blockSize: SERVING_TUNING.blockSize } });
    try {
      const plain = (c: typeof config): unknown => ({ ...c, cost: undefined, eosIds: undefined, history: undefined });
      assert.deepEqual(plain(config), plain(server.config));
      assert.deepEqual(config.devices.map((d) => [d.id, d.primary]), [['primary', true], ['attn-1', false], ['attn-2', false]]);
      assert.equal(config.cost.decodeAttention(config.devices[2]!.spec, 1000, 4).seconds, 3 * config.cost.decodeAttention(config.devices[1]!.spec, 1000, 4).seconds);
    } finally {
      await server.close();
    }
  }
});

test('a short workload run for real and replayed on the virtual clock: every request finishes in both with the same tokens', async () => {
  const profile = await profileLocal({ model: openModel(MODEL, undefined).model.spec, quick: true, transport: false, tokens: [1, 16] });
  // A small primary KV so heads also live on the attention workers (one of them emulated slower).
  const layout = { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 1 << 20 }, attention: parseAttentionList('4MiB,4MiB:2'), blockSize: SERVING_TUNING.blockSize };
  const server = await startLocalServer({ modelPath: MODEL, profile, layout });
  try {
    // Arrivals close together, so that requests overlap and fill the primary's KV whatever the machine's speed.
    // Some drawn with a temperature (with top-p and without), as clients of a real server do.
    const requests = poissonWorkload({ seed: 5, rate: 400, count: 12, prompt: [8, 40], output: [4, 24], context: server.contextLength })
      .map((r, i) => (i % 3 === 0 ? r : { ...r, sampling: { temperature: 0.8, topP: i % 3 === 1 ? 0.9 : 1 } }));
    const run = await runLoad(server, requests, 5);
    assert.equal(run.sampling?.size, 8, 'the client reports the requests it sent with a temperature');
    assert.deepEqual([server.engine.steps.length, server.engine.records.length], [0, 0], 'the engine forgot the history the run read');
    assert.deepEqual(run.failures, []);
    assert.equal(run.records.length, requests.length);
    for (const r of run.records) assert.ok(r.finishReason === 'stop' || r.finishReason === 'length', `${r.id}: ${r.finishReason}`);
    assert.ok(run.steps.some((s) => Object.entries(s.kvUsedBlocks).some(([id, n]) => id !== 'primary' && n > 0)), 'no head was placed on an attention worker');
    const c = await compareReplay(server.config, run, { ttft: 5, tpot: 0.1 });
    assert.equal(c.requests, requests.length);
    assert.deepEqual(c.mismatched, []);
    const sim = new Map(c.replay.records.map((r) => [r.id, r]));
    for (const r of run.records) {
      const s = sim.get(r.id);
      assert.ok(s !== undefined, `${r.id} did not finish in the simulation`);
      assert.equal(s.outputLength, r.outputLength, `${r.id}: ${r.outputLength} tokens for real, ${s.outputLength} simulated`);
      assert.equal(s.finishReason, r.finishReason);
      assert.ok(s.firstTokenAt !== undefined || r.outputLength === 0);
    }
    assert.equal(c.real.completed, c.sim.completed);
    assert.ok(c.steps.every((e) => e.steps > 0));
    // Saved as the study saves it (JSON), read back and replayed: the same comparison.
    const loaded = loadRealRun(JSON.parse(JSON.stringify(saveRealRun(run))) as SavedRealRun);
    const again = await compareReplay(server.config, loaded, { ttft: 5, tpot: 0.1 });
    assert.deepEqual(again.figures, c.figures);
    // Every real step carries its shape; predicted again with the server's own cost model, it gets the prediction the server made.
    assert.ok(run.steps.every((st) => st.shape !== undefined));
    const again2 = repredictSteps(server.config, loaded.steps);
    for (const [i, st] of run.steps.entries()) {
      assert.ok(Math.abs(again2[i]!.predictedSeconds - st.predictedSeconds) <= 1e-12 * st.predictedSeconds, `step ${i}: ${again2[i]!.predictedSeconds} against ${st.predictedSeconds}`);
      assert.ok(Math.abs(again2[i]!.predictedInterval! - st.predictedInterval!) <= 1e-12 * st.predictedInterval!);
    }
    assert.deepEqual(again.replay.records, c.replay.records);
    assert.equal(again.saturated, c.saturated);
    // The study's replay of saved runs (scripts/fidelity.ts --replay): the same run saved as a
    // study, replayed alone and pooled with itself, writes the page and one JSON line per run and point.
    const study = tempDir('fidelity-study');
    const meta = {
      date: new Date().toISOString(), wall: 1, quick: true, repeats: 1, runSeconds: 1, minRequests: 1, traceScale: 0.1,
      layouts: [{ name: 'tiny', flags: '--primary-kv 1MiB --attention 4MiB,4MiB:2', primaryKv: '1MiB', attention: '4MiB,4MiB:2' }],
      machine: { cpu: 'test', cores: 2, memoryGiB: 1, node: process.version }, profile: { path: 'profile.json', seconds: 0, passes: [] },
    };
    writeFileSync(join(study, 'meta.json'), JSON.stringify(meta));
    writeFileSync(join(study, 'profile.json'), JSON.stringify(profile));
    writeFileSync(join(study, 'runs.jsonl'), `${JSON.stringify({ layout: 'tiny', workload: 'poisson', rate: 400, repeat: 1, sent: requests.length, failures: [], loadBefore: 0, ...saveRealRun(run) })}\n`);
    const page = join(study, 'page', 'fidelity.md');
    const replay = (dirs: string): { kind: string; repeats?: number; requests: number; mismatched: number; tpot_p50: { real: number; sim: number } }[] => {
      const out = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts/fidelity.ts'), '--replay', dirs, '--out', page], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
      assert.equal(out.status, 0, out.stderr);
      return out.stdout.trim().split('\n').map((l) => JSON.parse(l) as ReturnType<typeof replay>[number]);
    };
    const lines = replay(study);
    assert.deepEqual(lines.map((l) => l.kind), ['run', 'median']);
    assert.equal(lines[0]!.requests, requests.length);
    assert.equal(lines[0]!.mismatched, 0);
    const tpot = c.figures.find((f) => f.name === 'TPOT P50')!;
    assert.equal(lines[0]!.tpot_p50.real, +tpot.real.toPrecision(4));
    assert.equal(lines[0]!.tpot_p50.sim, +tpot.sim.toPrecision(4));
    const doc = readFileSync(page, 'utf8');
    assert.match(doc, /<!-- fidelity:begin -->[\s\S]*### Layout `tiny`[\s\S]*<!-- fidelity:end -->/);
    assert.match(doc, /replayed again/);
    const pooled = replay(`${study},${study}`);
    assert.deepEqual(pooled.map((l) => l.kind), ['run', 'run', 'median']);
    assert.equal(pooled[2]!.repeats, 2);
    assert.match(readFileSync(page, 'utf8'), /of 2 studies/);
    assert.equal(targetCheck([c]).runs, c.saturated ? 0 : 1);
  } finally {
    await server.close();
  }
});
