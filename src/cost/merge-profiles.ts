// Owns: combining profiles of one machine taken at different moments into one, every measured
// number the median over them (a shared machine's speed moves from minute to minute; one profile
// is a snapshot of ~90 s).
// Must not: measure anything or read files.

import { HetisError } from '../util/errors.js';
import type { ProfileFile } from './profile-types.js';

/**
 * One profile from several of the same machine, model shapes and grids: each number (a table's
 * seconds, a fitted coefficient, a round trip, a device's peak) is the median of that number over
 * the profiles (of two, their mean); everything else (names, the token grids' structure) must be the same in all of
 * them, and `createdAt` is the last one's. Throws bad_input naming the first place they differ.
 */
export function medianProfile(profiles: readonly ProfileFile[]): ProfileFile {
  if (profiles.length === 0) throw new HetisError('bad_input', 'medianProfile needs at least one profile');
  const last = profiles[profiles.length - 1]!.createdAt;
  return mergeAt(profiles.map((p) => ({ ...p, createdAt: last })), '') as ProfileFile;
}

/** The median; of an even count, the mean of the middle two. */
function middle(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

function mergeAt(values: readonly unknown[], path: string): unknown {
  const first = values[0];
  const differ = (what: string): never => {
    throw new HetisError('bad_input', `profiles differ at ${path === '' ? 'the top' : path}: ${what}; merge profiles of the same machine and model only`);
  };
  if (typeof first === 'number') {
    if (!values.every((v) => typeof v === 'number')) differ('a number in one, not in another');
    return middle(values as number[]);
  }
  if (Array.isArray(first)) {
    if (!values.every((v) => Array.isArray(v) && v.length === first.length)) differ('lists of different lengths');
    return first.map((_, i) => mergeAt(values.map((v) => (v as unknown[])[i]), `${path}[${i}]`));
  }
  if (first !== null && typeof first === 'object') {
    const keys = Object.keys(first).sort();
    for (const v of values) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) differ('an object in one, not in another');
      const k = Object.keys(v as object).sort();
      if (k.length !== keys.length || k.some((x, i) => x !== keys[i])) differ(`fields ${JSON.stringify(keys)} against ${JSON.stringify(k)}`);
    }
    return Object.fromEntries(Object.keys(first).map((k) => [k, mergeAt(values.map((v) => (v as Record<string, unknown>)[k]), `${path}.${k}`)]));
  }
  if (!values.every((v) => v === first)) differ(`${JSON.stringify(first)} against ${JSON.stringify(values.find((v) => v !== first))}`);
  return first;
}
