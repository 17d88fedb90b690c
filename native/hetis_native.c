// Owns: the N-API bridge from Float32Array matrix products to OpenBLAS (sgemv / sgemm) and its thread count,
// and its own product for 2-8 rows against a transposed weight (where OpenBLAS's sgemm is slow).
// Must not: allocate, copy, or keep references to caller buffers; every call works in place on the views given.

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <node_api.h>

// OpenBLAS extensions. Declared here too so that a build picking up a generic cblas.h (another
// alternative selected by update-alternatives) still compiles; the prototypes match OpenBLAS's own.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);

// Returns NULL from the calling function, with a JS Error thrown, unless `call` gives napi_ok.
#define CHECK_NAPI(env, call)                                              \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "hetis_native: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

// A Float32Array argument: data pointer (byteOffset already applied) and length in elements.
typedef struct {
  float *data;
  size_t length;
} f32_view;

// Reads argument `value` as a Float32Array; throws a TypeError naming `fn: what` and returns 0 otherwise.
static int get_f32(napi_env env, napi_value value, const char *fn, const char *what, f32_view *view) {
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  void *data = NULL;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, &view->length, &data, NULL, NULL) != napi_ok ||
      type != napi_float32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: %s must be a Float32Array", fn, what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  view->data = (float *)data;
  return 1;
}

// Reads argument `value` as an integer in [0, INT_MAX] (OpenBLAS takes 32-bit ints); throws a
// TypeError / RangeError naming `fn: what` ("sgemm: n") and returns 0 otherwise.
static int get_int(napi_env env, napi_value value, const char *fn, const char *what, int *out) {
  double d;
  char msg[96];
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    snprintf(msg, sizeof msg, "%s: %s must be a number", fn, what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (!(d >= 0 && d <= (double)INT_MAX) || d != (double)(int)d) {
    snprintf(msg, sizeof msg, "%s: %s must be an integer in [0, %d]", fn, what, INT_MAX);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  *out = (int)d;
  return 1;
}

static int overlaps(const f32_view *a, size_t a_len, const f32_view *b, size_t b_len) {
  uintptr_t a0 = (uintptr_t)a->data, a1 = a0 + a_len * sizeof(float);
  uintptr_t b0 = (uintptr_t)b->data, b1 = b0 + b_len * sizeof(float);
  return a_len > 0 && b_len > 0 && a0 < b1 && b0 < a1;
}

// Rows up to which x · Wᵀ runs in rows_times_wt instead of OpenBLAS's sgemm. OpenBLAS runs one row
// as a matrix-vector product and 2-8 rows through its general matrix path, which packs W and, for
// so few rows, costs 2-3x the one-row product (a decode step of 2 sequences 1.66 ms, of one 0.71 ms,
// on the development VM): what bounds a product this small is reading W once, and the arithmetic
// is a few FLOPs per weight.
#define SMALL_ROWS 8
// The small-row product, compiled twice from one source: for AVX2 (picked at run time when the
// CPU has it) and for the baseline. Both do the same operations in the same order, so their
// results are identical.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2")
#define SMALL_ROWS_SUFFIX avx2
#include "small_rows.h"
#undef SMALL_ROWS_SUFFIX
#pragma GCC pop_options
#endif
#define SMALL_ROWS_SUFFIX baseline
#include "small_rows.h"
#undef SMALL_ROWS_SUFFIX

// Whether products of 2-SMALL_ROWS rows use rows_times_wt: yes unless HETIS_NATIVE_SMALL_ROWS=0
// (then OpenBLAS's sgemm, to compare the two or to rule the kernel out).
static int small_rows_enabled(void) {
  static int enabled = -1;
  if (enabled < 0) {
    const char *env = getenv("HETIS_NATIVE_SMALL_ROWS");
    enabled = env != NULL && strcmp(env, "0") == 0 ? 0 : 1;
  }
  return enabled;
}

// x[n, k] · W[m, k]ᵀ for 2 <= n <= SMALL_ROWS.
static void rows_times_wt(float *restrict out, const float *restrict x, const float *restrict w, int n, int k, int m) {
#if defined(__x86_64__) && defined(__GNUC__)
  static int avx2 = -1;
  if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (avx2) {
    rows_times_wt_avx2(out, x, w, n, k, m);
    return;
  }
#endif
  rows_times_wt_baseline(out, x, w, n, k, m);
}

// Shared body of sgemm and sgemm_nn: reads (out, x, w, n, k, m), checks them, and runs
//   w_transposed: out[n, m] = x[n, k] · W[m, k]ᵀ   (W row-major [m, k], a weight stored [out, in])
//   otherwise:    out[n, m] = x[n, k] · W[k, m]    (W row-major [k, m], e.g. attention's P · V)
static napi_value matmul(napi_env env, napi_callback_info info, int w_transposed, const char *name) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: expected (out, x, w, n, k, m)", name);
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  f32_view out, x, w;
  int n, k, m;
  if (!get_f32(env, argv[0], name, "out", &out) || !get_f32(env, argv[1], name, "x", &x) ||
      !get_f32(env, argv[2], name, "w", &w) || !get_int(env, argv[3], name, "n", &n) ||
      !get_int(env, argv[4], name, "k", &k) || !get_int(env, argv[5], name, "m", &m)) {
    return NULL;
  }
  // Element counts as 64-bit: each dimension is < 2^31, so products fit.
  size_t n_out = (size_t)n * (size_t)m, n_x = (size_t)n * (size_t)k, n_w = (size_t)m * (size_t)k;
  if (out.length < n_out || x.length < n_x || w.length < n_w) {
    char msg[224];
    snprintf(msg, sizeof msg,
             "%s: arrays too short for n=%d k=%d m=%d (out %zu < %zu, x %zu < %zu, or w %zu < %zu)",
             name, n, k, m, out.length, n_out, x.length, n_x, w.length, n_w);
    napi_throw_range_error(env, NULL, msg);
    return NULL;
  }
  if (overlaps(&out, n_out, &x, n_x) || overlaps(&out, n_out, &w, n_w)) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: out must not overlap x or w", name);
    napi_throw_range_error(env, NULL, msg);
    return NULL;
  }
  if (n_out == 0) return NULL;
  if (k == 0) {  // empty sum; OpenBLAS rejects a leading dimension of 0
    memset(out.data, 0, n_out * sizeof(float));
    return NULL;
  }
  if (w_transposed) {
    if (n == 1) {  // out[m] = W[m, k] · x[k]
      cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, w.data, k, x.data, 1, 0.0f, out.data, 1);
    } else if (n <= SMALL_ROWS && openblas_get_num_threads() == 1 && small_rows_enabled()) {
      rows_times_wt(out.data, x.data, w.data, n, k, m);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, x.data, k, w.data, k, 0.0f,
                  out.data, m);
    }
  } else {
    if (n == 1) {  // out[m] = W[k, m]ᵀ · x[k]
      cblas_sgemv(CblasRowMajor, CblasTrans, k, m, 1.0f, w.data, m, x.data, 1, 0.0f, out.data, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m, k, 1.0f, x.data, k, w.data, m,
                  0.0f, out.data, m);
    }
  }
  return NULL;
}

// sgemm(out, x, w, n, k, m): out[n, m] = x[n, k] · W[m, k]ᵀ, all row-major float32.
static napi_value sgemm(napi_env env, napi_callback_info info) { return matmul(env, info, 1, "sgemm"); }

// sgemm_nn(out, x, w, n, k, m): out[n, m] = x[n, k] · W[k, m], all row-major float32.
static napi_value sgemm_nn(napi_env env, napi_callback_info info) { return matmul(env, info, 0, "sgemm_nn"); }


// setThreads(t): threads OpenBLAS may use for later calls; t is an integer >= 1.
static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "setThreads: expected a thread count");
    return NULL;
  }
  int t = 0;
  if (!get_int(env, argv[0], "setThreads", "threads", &t)) return NULL;
  if (t < 1) {
    napi_throw_range_error(env, NULL, "setThreads: thread count must be >= 1");
    return NULL;
  }
  openblas_set_num_threads(t);
  return NULL;
}

// getThreads(): the thread count OpenBLAS currently uses.
static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

// config(): OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
static napi_value config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  const char *text = openblas_get_config();
  CHECK_NAPI(env, napi_create_string_utf8(env, text ? text : "", NAPI_AUTO_LENGTH, &result));
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const napi_property_descriptor props[] = {
      {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sgemmNN", NULL, sgemm_nn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
