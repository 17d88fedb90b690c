// Owns: the `hetis profile` command: options to profileLocal, a progress display, the JSON file.
// Must not: measure anything itself (runtime/profile.ts does).

import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { ProfileFile } from '../cost/profile-types.js';
import { modelShape, sameShape } from '../cost/profiled.js';
import { resolveModelSpec } from '../model/catalog.js';
import { paramCount, type ModelSpec } from '../model/spec.js';
import type { KernelPreference } from '../runtime/kernel-select.js';
import { DEFAULT_PROFILE_SPEC } from '../runtime/profile.js';
import { profileRepeated } from '../server/profile-serving.js';
import { HetisError } from '../util/errors.js';
import { createProgress } from './progress.js';

/** Where the profile goes without --out, under the current directory (gitignored). */
export const DEFAULT_PROFILE_PATH = '.hetis-cache/profile.json';

/** Where `hetis serve` caches its profile of this machine for a model (`hetis simulate --cluster local` reads it), under `root`. */
export function profileCachePath(spec: Pick<ModelSpec, 'name'>, root = '.'): string {
  return resolve(root, '.hetis-cache', `profile-${spec.name.replace(/[^A-Za-z0-9._-]+/g, '-')}.json`);
}

/** The profile has tables for `spec`'s shape. */
export function profileFits(profile: ProfileFile, spec: ModelSpec): boolean {
  return profile.profiles.some((d) => sameShape(d.model, modelShape(spec)));
}

export interface ProfileFlags {
  out?: string;
  model?: string;
  threads: number;
  quick?: boolean;
  kernels: KernelPreference;
  clock?: 'cpu' | 'wall';
  /** Profiles taken one after another and merged (each number their median); default 1. */
  repeats?: number;
}

export async function profileCommand(f: ProfileFlags): Promise<void> {
  // Timing does not depend on weight values: the model's shape with random weights is profiled.
  const spec: ModelSpec = f.model === undefined ? DEFAULT_PROFILE_SPEC : resolveModelSpec(f.model);
  const bytes = paramCount(spec) * 4;
  if (bytes > 0.6 * totalmem()) {
    throw new HetisError('bad_input', `${spec.name}: ${(bytes / 1e9).toFixed(1)} GB of F32 weights is too much for this machine's ` +
      `${(totalmem() / 1e9).toFixed(1)} GB; profile a smaller model`);
  }
  const out = resolve(f.out ?? DEFAULT_PROFILE_PATH);
  const progress = createProgress(process.stderr, 'hetis profile');
  const modelPath = servableFile(f.model) ? resolve(f.model!) : undefined;
  let measured;
  try {
    measured = await profileRepeated({
      model: spec, threads: f.threads, kernels: f.kernels, quick: f.quick === true,
      ...(f.repeats !== undefined ? { passes: f.repeats } : {}),
      ...(modelPath !== undefined ? { modelPath } : {}),
      ...(f.clock !== undefined ? { clock: f.clock } : {}),
      onProgress: (done, total, label) => progress.update(done, total, label),
    });
  } finally {
    progress.finish();
  }
  const { profile, passes } = measured;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(profile, null, 2)}\n`);
  const d = profile.devices[0]!;
  const link = profile.links[0];
  if (passes.length > 1) {
    process.stderr.write(`hetis profile: ${passes.length} passes, each number their median; GFLOP/s per pass: ${passes.map((p) => (p.devices[0]!.peakFlops / 1e9).toFixed(1)).join(', ')}\n`);
  }
  process.stderr.write(
    `hetis profile: ${d.name} (${profile.machine.kernels}): ${(d.peakFlops / 1e9).toFixed(1)} GFLOP/s, ` +
      `${(d.memoryBandwidth / 1e9).toFixed(1)} GB/s read` +
      (link ? `, worker link ${(link.latency * 1e6).toFixed(0)} us + ${(link.bandwidth / 1e9).toFixed(2)} GB/s` : '') + '\n',
  );
  process.stdout.write(`${out}\n`);
}

/**
 * A model given as a weights file a worker can load (GGUF or llama2.c, not a config): the profile
 * then also measures real steps of a local cluster running it (round trips, cold steps, the
 * engine's own time between steps; a full profile also what serving over HTTP adds).
 */
function servableFile(model: string | undefined): boolean {
  if (model === undefined || /\.json$/i.test(model)) return false;
  return statSync(model, { throwIfNoEntry: false })?.isFile() === true;
}
