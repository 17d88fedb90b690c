// Owns: the element-wise numeric loops of a Llama layer (RMSNorm, RoPE, SwiGLU, residual add,
// attention's causal softmax). Must not: allocate per call (callers pass scratch) or know about
// batches, sequences or stores.

/**
 * dst[dstOff .. dstOff+n) = src[srcOff .. srcOff+n): one head's row, without the view
 * `dst.set(src.subarray(...))` allocates on every call (the attention paths copy thousands a step).
 */
export function copyFloats(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/** out[r, :] = x[r, :] / rms(x[r, :]) * w, for `rows` rows of width `dim`. out may alias x. */
export function rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i] * inv * w[i];
  }
}

/**
 * Precomputed RoPE angles: inverse frequency theta^(-2j/headDim) for j < headDim/2.
 * Rotation of pair (x[2j], x[2j+1]) by pos * invFreq[j] (Meta / llama2.c / GGUF-llama layout).
 */
export function ropeInvFreq(headDim: number, theta: number): Float64Array {
  const half = headDim / 2;
  const f = new Float64Array(half);
  for (let j = 0; j < half; j++) f[j] = Math.pow(theta, (-2 * j) / headDim);
  return f;
}

/**
 * Rotates `nHeads` heads of width headDim in row r of x (row width nHeads*headDim) by positions[r],
 * for `rows` rows. cos/sin are scratch of length headDim/2.
 */
export function rope(
  x: Float32Array, rows: number, nHeads: number, headDim: number, positions: Int32Array,
  invFreq: Float64Array, cos: Float32Array, sin: Float32Array,
): void {
  const half = headDim / 2;
  const width = nHeads * headDim;
  for (let r = 0; r < rows; r++) {
    const pos = positions[r];
    for (let j = 0; j < half; j++) {
      const a = pos * invFreq[j];
      cos[j] = Math.cos(a);
      sin[j] = Math.sin(a);
    }
    for (let h = 0; h < nHeads; h++) {
      const o = r * width + h * headDim;
      for (let j = 0; j < half; j++) {
        const x0 = x[o + 2 * j];
        const x1 = x[o + 2 * j + 1];
        x[o + 2 * j] = x0 * cos[j] - x1 * sin[j];
        x[o + 2 * j + 1] = x0 * sin[j] + x1 * cos[j];
      }
    }
  }
}

/** gate[i] = silu(gate[i]) * up[i] for n elements: SwiGLU. */
export function swiglu(gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** x[i] += y[i] for n elements (residual). */
export function addInPlace(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i] += y[i];
}

/**
 * Causal softmax over score rows for a prefill run: s is [c * group, len] (row i*group+g is query
 * head g of the run's token i, at position p0 + i). Scales by 1/sqrt(headDim), keeps columns
 * 0 .. p0+i, and zeroes the rest (future positions).
 */
export function softmaxCausalRows(s: Float32Array, c: number, group: number, len: number, p0: number, headDim: number): void {
  const scale = 1 / Math.sqrt(headDim);
  for (let i = 0; i < c; i++) {
    const keep = p0 + i + 1;
    for (let g = 0; g < group; g++) {
      const o = (i * group + g) * len;
      let max = -Infinity;
      for (let p = 0; p < keep; p++) {
        const v = s[o + p] * scale;
        s[o + p] = v;
        if (v > max) max = v;
      }
      let sum = 0;
      for (let p = 0; p < keep; p++) {
        const e = Math.exp(s[o + p] - max);
        s[o + p] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let p = 0; p < keep; p++) s[o + p] *= inv;
      for (let p = keep; p < len; p++) s[o + p] = 0;
    }
  }
}
