// Owns: checking the OpenBLAS backend against matmulRef, its argument checks, and backend selection.
// Must not: assert on timings (bench/kernels.ts measures speed).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadNativeKernels, matmulRef, matmulNNRef, referenceKernels, type NativeKernels } from '../src/runtime/kernels/index.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { HetisError } from '../src/util/errors.js';
import { createRng, type Rng } from '../src/util/rng.js';

const load = loadNativeKernels();
const native: NativeKernels | undefined = load.kernels;
// CI fails earlier when the addon did not build (`scripts/build-native.mjs --require` in .ci/run).
const skipNative = native ? false : `native kernels not built (${load.reason})`;

/** The backend inside the suite below, which runs only when it loaded. */
function nk(): NativeKernels {
  if (!native) throw new Error('unreachable: the native suite runs only when the addon loaded');
  return native;
}

function randomArray(rng: Rng, length: number): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = rng.next() * 2 - 1;
  return a;
}

/** A Float32Array of `length` random values that is a view starting `offset` floats into a larger buffer. */
function randomView(rng: Rng, length: number, offset: number): Float32Array {
  return randomArray(rng, offset + length + 5).subarray(offset, offset + length);
}

/**
 * Asserts |got - want| <= tol · Σᵢ |x[r,i]·w[j,i]| for each output: error relative to the dot
 * product's magnitude, the scale float32 rounding error grows with (a plain relative error is
 * meaningless where terms cancel to near 0).
 */
function assertClose(got: Float32Array, want: Float32Array, x: Float32Array, w: Float32Array, n: number, k: number, m: number, tol = 1e-4): void {
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < m; j++) {
      let scale = 0;
      for (let i = 0; i < k; i++) scale += Math.abs(x[r * k + i] * w[j * k + i]);
      const diff = Math.abs(got[r * m + j] - want[r * m + j]);
      assert.ok(diff <= tol * scale + 1e-30, `out[${r}, ${j}]: got ${got[r * m + j]}, want ${want[r * m + j]} (n=${n} k=${k} m=${m})`);
    }
  }
}

function checkShape(kernels: NativeKernels, rng: Rng, n: number, k: number, m: number, offset = 0): void {
  const x = randomView(rng, n * k, offset);
  const w = randomView(rng, m * k, offset + 1);
  const want = new Float32Array(n * m);
  matmulRef(want, x, w, n, k, m);
  const outBuffer = new Float32Array(offset + n * m + 4).fill(42);
  const out = outBuffer.subarray(offset, offset + n * m);
  kernels.matmul(out, x, w, n, k, m);
  assertClose(out, want, x, w, n, k, m);
  for (let i = 0; i < offset; i++) assert.equal(outBuffer[i], 42, 'wrote before the out view');
  for (let i = offset + n * m; i < outBuffer.length; i++) assert.equal(outBuffer[i], 42, 'wrote past the out view');
}

/** W [m, k] row-major transposed into [k, m], so matmulNN(x, Wᵀ) must equal matmul(x, W). */
function transposed(w: Float32Array, m: number, k: number): Float32Array {
  const t = new Float32Array(m * k);
  for (let j = 0; j < m; j++) for (let i = 0; i < k; i++) t[i * m + j] = w[j * k + i];
  return t;
}

function checkNN(kernels: { matmulNN: NativeKernels['matmulNN'] }, rng: Rng, n: number, k: number, m: number): void {
  const x = randomArray(rng, n * k);
  const w = randomArray(rng, m * k); // [m, k]
  const want = new Float32Array(n * m);
  matmulRef(want, x, w, n, k, m);
  const got = new Float32Array(n * m);
  kernels.matmulNN(got, x, transposed(w, m, k), n, k, m);
  assertClose(got, want, x, w, n, k, m);
}

test('the reference matmulNN equals matmul against the transposed matrix', () => {
  const rng = createRng(11);
  for (const n of [1, 4]) for (const [k, m] of [[7, 13], [1, 1], [48, 200]] as const) checkNN({ matmulNN: matmulNNRef }, rng, n, k, m);
});

describe('native kernels (OpenBLAS)', { skip: skipNative }, () => {
  test('matmulNN (x · W with W [k, m]) matches the reference, n in {1, 2, 6}', () => {
    const rng = createRng(12);
    for (const n of [1, 2, 6]) for (const [k, m] of [[7, 13], [200, 48], [1, 1], [33, 64]] as const) checkNN(nk(), rng, n, k, m);
  });

  test('the addon describes itself', () => {
    assert.equal(nk().name, 'openblas');
    assert.match(nk().config, /OpenBLAS/);
  });

  test('matches matmulRef on random shapes, n in {1, 3, 17}, odd sizes', () => {
    const rng = createRng(1);
    for (const n of [1, 3, 17]) {
      for (const [k, m] of [[7, 13], [1, 1], [13, 7], [288, 768], [768, 288], [64, 5]] as const) {
        checkShape(nk(), rng, n, k, m);
      }
    }
  });

  test('the small-row product (2-8 rows, its own kernel) matches matmulRef, with k not a multiple of 8 and offset views', () => {
    const rng = createRng(5);
    for (const n of [2, 4, 5, 6, 7, 8]) {
      for (const [k, m] of [[7, 13], [8, 3], [17, 9], [288, 768], [768, 288], [1, 1]] as const) checkShape(nk(), rng, n, k, m);
      checkShape(nk(), rng, n, 13, 7, 3);
    }
  });

  test('matches matmulRef on a 15M-model matmul (n=64, k=288, m=768)', () => {
    checkShape(nk(), createRng(2), 64, 288, 768);
  });

  test('accepts views with a byteOffset and writes only inside the out view', () => {
    const rng = createRng(3);
    for (const n of [1, 3, 17]) for (const offset of [1, 3, 7]) checkShape(nk(), rng, n, 7, 13, offset);
  });

  test('gives the same results on one thread and on several', () => {
    const native = nk();
    const before = native.threads();
    try {
      for (const threads of [1, 2]) {
        native.setThreads(threads);
        assert.equal(native.threads(), threads);
        checkShape(native, createRng(4), 17, 288, 768);
      }
    } finally {
      native.setThreads(before);
    }
  });

  test('k = 0 gives zeros; n = 0 or m = 0 writes nothing', () => {
    const native = nk();
    const out = new Float32Array(6).fill(7);
    native.matmul(out, new Float32Array(0), new Float32Array(0), 2, 0, 3);
    assert.deepEqual([...out], [0, 0, 0, 0, 0, 0]);
    out.fill(7);
    native.matmul(out, new Float32Array(0), new Float32Array(5), 0, 5, 1);
    native.matmul(out, new Float32Array(5), new Float32Array(0), 1, 5, 0);
    assert.deepEqual([...out], [7, 7, 7, 7, 7, 7]);
  });

  test('bad arguments throw instead of crashing', () => {
    const native = nk();
    const mm = native.matmul as (...args: unknown[]) => void;
    const out = new Float32Array(4), x = new Float32Array(6), w = new Float32Array(6);
    mm(out, x, w, 2, 3, 2); // the valid call the cases below each break one way
    const cases: [unknown[], ErrorConstructor, RegExp][] = [
      [[new Float64Array(4), x, w, 2, 3, 2], TypeError, /out must be a Float32Array/],
      [[out, [1, 2, 3, 4, 5, 6], w, 2, 3, 2], TypeError, /x must be a Float32Array/],
      [[out, x, new Int32Array(6), 2, 3, 2], TypeError, /w must be a Float32Array/],
      [[out, x, w.buffer, 2, 3, 2], TypeError, /w must be a Float32Array/],
      [[out, x, w, '2', 3, 2], TypeError, /n must be a number/],
      [[out, x, w, 2, 3.5, 2], RangeError, /k must be an integer/],
      [[out, x, w, 2, 3, -1], RangeError, /m must be an integer/],
      [[out, x, w, 2, 3, NaN], RangeError, /m must be an integer/],
      [[out, x, w, 2 ** 31, 3, 2], RangeError, /n must be an integer/],
      [[out, x, w, 2, 3, 3], RangeError, /too short/],
      [[out.subarray(1), x, w, 2, 3, 2], RangeError, /too short/],
      [[out, x, w, 2, 3], TypeError, /expected \(out, x, w, n, k, m\)/],
      [[x.subarray(0, 4), x, w, 2, 2, 2], RangeError, /must not overlap/],
    ];
    for (const [args, type, message] of cases) assert.throws(() => mm(...args), (err: unknown) => err instanceof type && message.test(err.message));
    assert.throws(() => native.setThreads(0), RangeError);
    assert.throws(() => (native.setThreads as (t: unknown) => void)('two'), TypeError);
  });
});

describe('kernel selection', () => {
  test("'reference' gives the TypeScript kernels", () => {
    assert.equal(getKernels('reference', {}), referenceKernels);
    const out = new Float32Array(2);
    getKernels('reference', {}).matmul(out, new Float32Array([1, 2]), new Float32Array([1, 1, 3, -1]), 1, 2, 2);
    assert.deepEqual([...out], [3, 1]);
  });

  test('HETIS_KERNELS=reference overrides auto, but not an explicit preference', () => {
    assert.equal(getKernels('auto', { HETIS_KERNELS: 'reference' }), referenceKernels);
    if (native) assert.equal(getKernels('native', { HETIS_KERNELS: 'reference' }), native);
  });

  test('an unknown HETIS_KERNELS value is a bad_input error', () => {
    assert.throws(() => getKernels('auto', { HETIS_KERNELS: 'blas' }), (err: unknown) => err instanceof HetisError && err.code === 'bad_input');
  });

  test("'auto' and 'native' give OpenBLAS when it loads; 'native' throws unsupported when it does not", () => {
    if (native) {
      assert.equal(getKernels('auto', {}), native);
      assert.equal(getKernels('native', {}), native);
    } else {
      assert.throws(() => getKernels('native', {}), (err: unknown) => err instanceof HetisError && err.code === 'unsupported');
    }
  });
});
