// The fidelity study's speed probe (scripts/fidelity.ts starts it before each run): a process of
// its own loads the built-in model, warms up, and times one-token dense sweeps (every op of a
// layer x layers, and the LM head, each after the profile's short idle pause) for about a
// second; it writes their median in seconds as one JSON line. The machine is shared and its
// speed moves from minute to minute: comparing this number before each run with the one taken
// right after profiling tells how far the machine has drifted from its profile.

import { join, resolve } from 'node:path';
import { openModel } from '../src/cli/open-model.js';
import { DenseRunner } from '../src/runtime/dense.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { DEFAULT_PAUSE_MS } from '../src/runtime/profile.js';
import { denseSweep, makeClock, sample, sweepSeconds, type ProfiledOp } from '../src/runtime/profile-ops.js';
import { median } from '../src/util/fit.js';

const root = resolve(import.meta.dirname ?? '.', '..');
const model = openModel(join(root, 'models/hetis-kjv.gguf'), undefined).model;
const kernels = getKernels('auto');
kernels.setThreads(1);
const runner = new DenseRunner(model, kernels);
const layers = model.spec.nLayers;
const cost = (t: Record<ProfiledOp, number>): number => sweepSeconds(t, layers);
const sweep = denseSweep(makeClock('cpu'), runner, 1);
sample({ warmup: 0, min: 300, max: 300, seconds: 0 }, sweep, cost); // JIT
const samples = sample({ warmup: 5, min: 200, max: 2000, seconds: 0.8, pauseMs: DEFAULT_PAUSE_MS }, sweep, cost);
process.stdout.write(`${JSON.stringify({ seconds: median(samples.map(cost)) })}\n`);
