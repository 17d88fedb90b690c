// Owns: small least-squares fits (a few coefficients, non-negative) for measured tables and
// statistics of repeated measurements. Must not: measure or read the clock.

import { assert } from './errors.js';

/** Median of a non-empty list (the upper middle for even lengths). */
export function median(xs: readonly number[]): number {
  assert(xs.length > 0, 'median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Mean of the smallest `keep` share of a non-empty list (at least one value): an expected value
 * for times whose slow tail (a process woken late on shared cores) adds up over many repeats,
 * without the rare far outliers (a collection pause, another tenant's time slice).
 */
export function trimmedMean(xs: readonly number[], keep = 0.98): number {
  assert(xs.length > 0, 'mean of an empty list');
  const s = [...xs].sort((a, b) => a - b).slice(0, Math.max(1, Math.ceil(keep * xs.length)));
  return s.reduce((a, b) => a + b, 0) / s.length;
}

/**
 * Non-negative weighted least squares for a few coefficients: minimises
 * sum_i w_i (X_i · c - y_i)² subject to c >= 0, exactly, by solving the unconstrained problem
 * on every subset of the columns (2^k - 1 of them; k <= 6) and keeping the best feasible one.
 * X: rows of k features; w defaults to 1 for every row. Coefficients outside the chosen subset are 0.
 */
export function nonNegativeLeastSquares(X: readonly (readonly number[])[], y: readonly number[], w?: readonly number[]): number[] {
  const k = X[0]?.length ?? 0;
  assert(k > 0 && k <= 6, `nonNegativeLeastSquares takes 1..6 columns, got ${k}`);
  assert(X.length === y.length && (w === undefined || w.length === y.length), 'rows, targets and weights must have one length');
  let best: number[] = new Array<number>(k).fill(0);
  let bestErr = residual(X, y, w, best);
  for (let mask = 1; mask < 1 << k; mask++) {
    const cols = [...Array(k).keys()].filter((j) => (mask >> j) & 1);
    const sub = solveWeighted(X.map((row) => cols.map((j) => row[j]!)), y, w);
    if (sub === undefined || sub.some((c) => c < 0)) continue;
    const c = new Array<number>(k).fill(0);
    cols.forEach((j, i) => { c[j] = sub[i]!; });
    const err = residual(X, y, w, c);
    if (err < bestErr) { best = c; bestErr = err; }
  }
  return best;
}

function residual(X: readonly (readonly number[])[], y: readonly number[], w: readonly number[] | undefined, c: readonly number[]): number {
  let s = 0;
  X.forEach((row, i) => {
    const r = row.reduce((a, x, j) => a + x * c[j]!, 0) - y[i]!;
    s += (w?.[i] ?? 1) * r * r;
  });
  return s;
}

/**
 * Unconstrained weighted least squares via the normal equations on columns scaled to max |x| = 1
 * (features span 1 .. 1e5 here); undefined when singular.
 */
function solveWeighted(X0: readonly (readonly number[])[], y: readonly number[], w: readonly number[] | undefined): number[] | undefined {
  const k = X0[0]!.length;
  const colScale = [...Array(k).keys()].map((j) => Math.max(...X0.map((r) => Math.abs(r[j]!))) || 1);
  const X = X0.map((r) => r.map((x, j) => x / colScale[j]!));
  // A = Xᵀ W X (k x k), b = Xᵀ W y, as an augmented matrix [A | b].
  const m = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  X.forEach((row, i) => {
    const wi = w?.[i] ?? 1;
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) m[a]![b]! += wi * row[a]! * row[b]!;
      m[a]![k]! += wi * row[a]! * y[i]!;
    }
  });
  // Gaussian elimination with partial pivoting, relative singularity threshold.
  const scale = Math.max(...m.map((r, i) => Math.abs(r[i]!)), Number.MIN_VALUE);
  for (let col = 0; col < k; col++) {
    let piv = col;
    for (let r = col + 1; r < k; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[piv]![col]!)) piv = r;
    if (Math.abs(m[piv]![col]!) <= 1e-12 * scale) return undefined;
    [m[col], m[piv]] = [m[piv]!, m[col]!];
    const p = m[col]!;
    for (let r = 0; r < k; r++) {
      if (r === col) continue;
      const row = m[r]!;
      const f = row[col]! / p[col]!;
      for (let c = col; c <= k; c++) row[c]! -= f * p[c]!;
    }
  }
  return m.map((row, i) => row[k]! / row[i]! / colScale[i]!);
}
