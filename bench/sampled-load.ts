// What drawing tokens with a temperature costs real serving, against the cost model's charge: a
// local cluster of the built-in model (a primary, two attention workers) behind the HTTP server in
// this process, a client process sending a Poisson load (prompts and outputs 16-128 tokens)
// greedily, with temperature 0.8 and top-p 0.9, and with temperature 0.8 alone, one after another,
// round after round (the machine's speed moves between rounds: compare runs beside each other).
// Per run: the primary's dense part of the one-sequence decode steps (the sampling is timed in
// it), the decode steps' signed error against their predictions (predicted / measured - 1) with
// the profile's sampling charge and without it, and the charge itself. Prints one JSON line per
// run; progress on stderr. Needs a profile that measured sampling (`hetis profile --model FILE`).
//
//   npx tsx bench/sampled-load.ts [--profile FILE] [--rounds 3] [--rate 3]

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readProfile, runLoad, startLocalServer } from '../scripts/fidelity-run.js';
import { poissonWorkload, type LoadSampling } from '../src/sim/local-fidelity.js';
import { median } from '../src/util/fit.js';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({ options: {
  profile: { type: 'string', default: join(root, '.hetis-cache/profile-hetis-kjv.json') },
  rounds: { type: 'string', default: '3' },
  rate: { type: 'string', default: '3' },
} });
const ROUNDS = Number(values.rounds), RATE = Number(values.rate);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1)) throw new Error('--rounds must be a whole number of at least 1');
if (!(RATE > 0)) throw new Error('--rate must be a positive number of requests a second');
if (!existsSync(values.profile)) throw new Error(`no profile at ${values.profile}: run \`npx hetis profile --model models/hetis-kjv.gguf --out ${values.profile}\` first`);
const profile = readProfile(values.profile);
const costs = profile.profiles[0]?.sampling;
if (costs === undefined) throw new Error(`${values.profile} has no sampling costs (written before they were measured): profile again with --model`);

const MODES: { name: string; sampling?: LoadSampling }[] = [
  { name: 'greedy' }, { name: 'top-p 0.9', sampling: { temperature: 0.8, topP: 0.9 } }, { name: 'temperature 0.8', sampling: { temperature: 0.8, topP: 1 } },
];
const modelPath = join(root, 'models/hetis-kjv.gguf');
const layout = { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 32 << 20 }, attention: [{ id: 'attn-1', kvCapacityBytes: 64 << 20 }, { id: 'attn-2', kvCapacityBytes: 32 << 20 }], blockSize: 16 };
const server = await startLocalServer({ modelPath, layout, profile });
try {
  process.stderr.write('sampled-load: warming the server up (20 s)\n');
  await runLoad(server, poissonWorkload({ seed: 99, rate: 10, count: 200, prompt: [16, 128], output: [8, 64], context: 256 }), 99);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      process.stderr.write(`sampled-load: round ${round} of ${ROUNDS}, ${mode.name}\n`);
      const base = poissonWorkload({ seed: 7 + round, rate: RATE, count: Math.max(40, RATE * 10), prompt: [16, 128], output: [16, 128], context: 256 });
      const run = await runLoad(server, mode.sampling ? base.map((r) => ({ ...r, sampling: mode.sampling! })) : base, 7 + round);
      const decode = run.steps.filter((s) => s.prefillTokens === 0 && s.migrations === 0);
      const charge = (s: (typeof decode)[number]): number => s.predictedParts?.['sampling'] ?? 0;
      const one = decode.filter((s) => s.decodeTokens === 1);
      console.log(JSON.stringify({
        bench: 'sampled-load', round, mode: mode.name, rate: RATE, requests: run.records.length, failures: run.failures.length,
        dense_1seq_p50_ms: +(median(one.map((s) => s.parts?.['dense'] ?? NaN)) * 1e3).toFixed(3),
        charge_1seq_p50_ms: +(median(one.map(charge)) * 1e3).toFixed(3),
        decode_err_p50: +median(decode.map((s) => s.predictedSeconds / s.seconds - 1)).toFixed(3),
        decode_err_p50_without_charge: +median(decode.map((s) => (s.predictedSeconds - charge(s)) / s.seconds - 1)).toFixed(3),
      }));
    }
  }
} finally {
  await server.close();
}
