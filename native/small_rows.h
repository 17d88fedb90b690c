// Owns: the small-row product x[n, k] · W[m, k]ᵀ for 2 <= n <= SMALL_ROWS (hetis_native.c includes
// it once per instruction set, with SMALL_ROWS_SUFFIX naming that copy's functions).
// Must not: be included without SMALL_ROWS_SUFFIX, or call anything outside itself.

#define SMALL_ROWS_CAT2(a, b) a##_##b
#define SMALL_ROWS_CAT(a, b) SMALL_ROWS_CAT2(a, b)
#define SMALL_ROWS_NAME(name) SMALL_ROWS_CAT(name, SMALL_ROWS_SUFFIX)

// One partial sum: 8 floats (a 256-bit register with AVX2, two 128-bit ones without).
typedef float SMALL_ROWS_NAME(v8f) __attribute__((vector_size(32)));

static inline SMALL_ROWS_NAME(v8f) SMALL_ROWS_NAME(load8)(const float *p) {
  SMALL_ROWS_NAME(v8f) v;
  memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

// out[r, j] = Σ_i x[r, i] · w[j, i] for r < N: each row of W is read once for all N rows of x,
// into N partial sums of 8 lanes. N is a constant where this is inlined, so the unused sums and
// their `if`s fold away and the rest stay in registers (an array of sums indexed in a loop was
// kept in memory: 5x slower).
static inline __attribute__((always_inline)) void SMALL_ROWS_NAME(rows_n)(const int N, float *restrict out, const float *restrict x,
                                                                          const float *restrict w, int k, int m) {
  typedef SMALL_ROWS_NAME(v8f) v8;
  const int k8 = k - k % 8;
  const size_t K = (size_t)k;
  for (int j = 0; j < m; j++) {
    const float *restrict wj = w + (size_t)j * K;
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    for (int i = 0; i < k8; i += 8) {
      const v8 wv = SMALL_ROWS_NAME(load8)(wj + i);
      const float *xi = x + i;
      a0 += wv * SMALL_ROWS_NAME(load8)(xi);
      if (N > 1) a1 += wv * SMALL_ROWS_NAME(load8)(xi + K);
      if (N > 2) a2 += wv * SMALL_ROWS_NAME(load8)(xi + 2 * K);
      if (N > 3) a3 += wv * SMALL_ROWS_NAME(load8)(xi + 3 * K);
      if (N > 4) a4 += wv * SMALL_ROWS_NAME(load8)(xi + 4 * K);
      if (N > 5) a5 += wv * SMALL_ROWS_NAME(load8)(xi + 5 * K);
      if (N > 6) a6 += wv * SMALL_ROWS_NAME(load8)(xi + 6 * K);
      if (N > 7) a7 += wv * SMALL_ROWS_NAME(load8)(xi + 7 * K);
    }
    const v8 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int r = 0; r < N; r++) {
      const float *xr = x + (size_t)r * K;
      const v8 v = acc[r];
      float sum = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
      for (int t = k8; t < k; t++) sum += wj[t] * xr[t];
      out[(size_t)r * (size_t)m + j] = sum;
    }
  }
}

// One specialised loop per n in [2, 8].
static void SMALL_ROWS_NAME(rows_times_wt)(float *restrict out, const float *restrict x, const float *restrict w, int n, int k, int m) {
  switch (n) {
    case 2: SMALL_ROWS_NAME(rows_n)(2, out, x, w, k, m); break;
    case 3: SMALL_ROWS_NAME(rows_n)(3, out, x, w, k, m); break;
    case 4: SMALL_ROWS_NAME(rows_n)(4, out, x, w, k, m); break;
    case 5: SMALL_ROWS_NAME(rows_n)(5, out, x, w, k, m); break;
    case 6: SMALL_ROWS_NAME(rows_n)(6, out, x, w, k, m); break;
    case 7: SMALL_ROWS_NAME(rows_n)(7, out, x, w, k, m); break;
    default: SMALL_ROWS_NAME(rows_n)(8, out, x, w, k, m); break;
  }
}
