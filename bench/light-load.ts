// The engine's time between steps in real serving at a light load against a busy one: a local
// cluster of the built-in model (a primary, two attention workers) behind the HTTP server in this
// process, a client process sending requests at fixed times; after a busy and a moderate load
// (warm-up, not reported), a light one (one 18-token request every 0.2 s, like the trace at 5
// req/s of docs/fidelity.md), a busy one (one 120-token request every 0.1 s), and the light one
// again. Per phase: the time between two one-sequence decode steps (the next start less the
// step's end; median), the decode steps, and the requests' TPOT. What serving.light models
// (docs/cost-model.md). Prints one JSON line per phase; progress on stderr.
//
//   npx tsx bench/light-load.ts [--rounds 2]   (each round a fresh server)

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readProfile, runLoad, startLocalServer } from '../scripts/fidelity-run.js';
import { loadModel } from '../src/model/load.js';
import { profileLocal } from '../src/runtime/profile.js';
import { percentile } from '../src/sim/metrics.js';
import type { LoadRequest } from '../src/sim/local-fidelity.js';
import { median } from '../src/util/fit.js';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' } } });
const ROUNDS = Number(values.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1)) throw new Error('--rounds must be a whole number of at least 1');

/**
 * The phases each server runs, in order (the first two warm it up and are not reported): 20 s
 * busy and 13 s moderate, as `npm run fidelity`'s layouts have run when its light trace comes,
 * their lengths varied (half to 1.75x the figure, by a fixed sequence).
 */
const PHASES: { name: string; every: number; count: number; prompt: number; tokens: number; vary?: boolean }[] = [
  { name: 'warm-up', every: 0.1, count: 200, prompt: 64, tokens: 40, vary: true },
  { name: 'moderate', every: 0.33, count: 40, prompt: 64, tokens: 72, vary: true },
  { name: 'light', every: 0.2, count: 50, prompt: 20, tokens: 18 },
  { name: 'busy', every: 0.1, count: 40, prompt: 20, tokens: 120 },
  { name: 'light again', every: 0.2, count: 30, prompt: 20, tokens: 18 },
];

const modelPath = join(root, 'models/hetis-kjv.gguf');
const cached = join(root, '.hetis-cache/profile-hetis-kjv.json');
// Only measured times are reported; the profile only has to be one of this model.
const profile = existsSync(cached) ? readProfile(cached) : await profileLocal({ model: loadModel(modelPath).model, quick: true, transport: false });
const layout = { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 32 << 20 }, attention: [{ id: 'attn-1', kvCapacityBytes: 64 << 20 }, { id: 'attn-2', kvCapacityBytes: 32 << 20 }], blockSize: 16 };

for (let round = 1; round <= ROUNDS; round++) {
  process.stderr.write(`light-load: round ${round} of ${ROUNDS}: a fresh server, ~70 s of load\n`);
  const server = await startLocalServer({ modelPath, layout, profile });
  try {
    for (const [i, phase] of PHASES.entries()) {
      const vary = (n: number, k: number): number => (phase.vary === true ? Math.max(1, Math.round(n * (0.5 + ((k * 37) % 100) / 80))) : n);
      const requests: LoadRequest[] = Array.from({ length: phase.count }, (_, k) => ({ arrival: k * phase.every, promptLength: vary(phase.prompt, k), maxTokens: vary(phase.tokens, k + 11) }));
      const run = await runLoad(server, requests, 17 + i);
      if (i < 2) continue;
      const gaps: number[] = [];
      for (let k = 0; k + 1 < run.steps.length; k++) {
        const a = run.steps[k]!, b = run.steps[k + 1]!;
        const gap = b.start - (a.start + a.seconds);
        if (a.prefillTokens === 0 && b.prefillTokens === 0 && a.decodeTokens === 1 && b.decodeTokens === 1 && gap < 0.002) gaps.push(gap);
      }
      const tpot = run.records.filter((r) => r.outputLength > 1 && r.firstTokenAt !== undefined)
        .map((r) => (r.finishedAt - r.firstTokenAt!) / (r.outputLength - 1)).sort((a, b) => a - b);
      const decode = run.steps.filter((s) => s.prefillTokens === 0).map((s) => s.seconds);
      console.log(JSON.stringify({
        bench: 'light-load', round, phase: phase.name, requests: run.records.length, failures: run.failures.length,
        gap_p50_us: +(median(gaps) * 1e6).toFixed(1), gap_samples: gaps.length, decode_step_p50_ms: +(median(decode) * 1e3).toFixed(3),
        tpot_p50_ms: +(median(tpot) * 1e3).toFixed(3), tpot_p95_ms: +(percentile(tpot, 0.95) * 1e3).toFixed(3),
      }));
    }
  } finally {
    await server.close();
  }
}
