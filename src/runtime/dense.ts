// Owns: the dense pieces of a Llama layer that live on a primary device: token embedding,
// pre-attention (norm, Q/K/V projection, RoPE), post-attention (output projection, residual,
// norm, SwiGLU MLP, residual) and the LM head. Must not: hold KV or compute attention.

import type { LoadedModel, ModelWeights } from '../model/weights.js';
import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';
import type { MatmulKernels } from './kernels/types.js';
import { addInPlace, rmsnorm, rope, ropeInvFreq, swiglu } from './kernels/ops.js';

/** Scratch for up to `rows` tokens; grown (never shrunk) when a bigger step arrives. */
class DenseScratch {
  rows = 0;
  xb = new Float32Array(0); // [rows, dim]     normed input
  attnProj = new Float32Array(0); // [rows, dim] output projection
  gate = new Float32Array(0); // [rows, ffnDim]
  up = new Float32Array(0); // [rows, ffnDim]
  ensure(rows: number, spec: ModelSpec): void {
    if (rows <= this.rows) return;
    const r = Math.max(rows, this.rows * 2);
    this.xb = new Float32Array(r * spec.dim);
    this.attnProj = new Float32Array(r * spec.dim);
    this.gate = new Float32Array(r * spec.ffnDim);
    this.up = new Float32Array(r * spec.ffnDim);
    this.rows = r;
  }
}

export class DenseRunner {
  readonly spec: ModelSpec;
  private readonly w: ModelWeights;
  private readonly invFreq: Float64Array;
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;
  private readonly s = new DenseScratch();

  constructor(model: LoadedModel, readonly kernels: MatmulKernels) {
    if (model.spec.gatedMlp === false) {
      throw new HetisError('unsupported', `${model.source}: only gated (SwiGLU) MLPs run here; this model's MLP is not gated`);
    }
    this.spec = model.spec;
    this.w = model.weights;
    this.invFreq = ropeInvFreq(this.spec.headDim, this.spec.ropeTheta);
    this.cos = new Float32Array(this.spec.headDim / 2);
    this.sin = new Float32Array(this.spec.headDim / 2);
  }

  /** x[t, :] = embedding row of tokens[t], for n tokens. x: [n, dim]. */
  embed(tokens: Int32Array, n: number, x: Float32Array): void {
    const { dim, vocabSize } = this.spec;
    for (let t = 0; t < n; t++) {
      const id = tokens[t]!;
      if (!(id >= 0 && id < vocabSize)) throw new HetisError('bad_input', `token id ${id} outside the vocabulary (0..${vocabSize - 1})`);
      x.set(this.w.tokenEmbedding.subarray(id * dim, (id + 1) * dim), t * dim);
    }
  }

  /**
   * q = RoPE(norm(x) Wqᵀ), k = RoPE(norm(x) Wkᵀ), v = norm(x) Wvᵀ for n tokens at `positions`.
   * x: [n, dim] (unchanged); q: [n, nHeads*headDim]; k, v: [n, nKvHeads*headDim].
   */
  preAttention(layer: number, x: Float32Array, positions: Int32Array, n: number, q: Float32Array, k: Float32Array, v: Float32Array): void {
    this.reserve(n);
    this.inputNorm(layer, x, n);
    this.qkv(layer, n, q, k, v);
    this.applyRope(positions, n, q, k);
  }

  /**
   * x += attn Woᵀ; x += Wdown (silu(norm(x) Wgateᵀ) * norm(x) Wupᵀ).
   * x: [n, dim] updated in place; attn: [n, nHeads*headDim] (every head filled).
   */
  postAttention(layer: number, x: Float32Array, attn: Float32Array, n: number): void {
    this.reserve(n);
    this.outProj(layer, attn, n);
    this.residual(x, n);
    this.postAttnNorm(layer, x, n);
    this.mlpUp(layer, n);
    this.act(n);
    this.mlpDown(layer, n);
    this.residual(x, n);
  }

  // The ops of one layer, one method per cost-model op (DenseOp), in forward order. They pass
  // data through the runner's scratch, so they must run in this order after reserve(n); the
  // profiler times them one by one.

  /**
   * The buffer outProj and mlpDown write ([rows, dim]) and residual adds: a tensor-parallel rank
   * all-reduces it in between.
   */
  get projection(): Float32Array {
    return this.s.attnProj;
  }

  /** Grows the scratch to hold n tokens (no-op in the steady state). */
  reserve(n: number): void {
    this.s.ensure(n, this.spec);
  }

  /** input_norm: xb = RMSNorm(x) with the layer's attention-norm weights. */
  inputNorm(layer: number, x: Float32Array, n: number): void {
    rmsnorm(this.s.xb, x, this.w.layers[layer]!.attnNorm, n, this.spec.dim, this.spec.normEps);
  }

  /** qkv: q = xb Wqᵀ, k = xb Wkᵀ, v = xb Wvᵀ. */
  qkv(layer: number, n: number, q: Float32Array, k: Float32Array, v: Float32Array): void {
    const { dim, nHeads, nKvHeads, headDim } = this.spec;
    const L = this.w.layers[layer]!;
    const xb = this.s.xb;
    this.kernels.matmul(q, xb, L.wq, n, dim, nHeads * headDim);
    this.kernels.matmul(k, xb, L.wk, n, dim, nKvHeads * headDim);
    this.kernels.matmul(v, xb, L.wv, n, dim, nKvHeads * headDim);
  }

  /** rope: rotates q and k in place by each token's position. */
  applyRope(positions: Int32Array, n: number, q: Float32Array, k: Float32Array): void {
    const { nHeads, nKvHeads, headDim } = this.spec;
    rope(q, n, nHeads, headDim, positions, this.invFreq, this.cos, this.sin);
    rope(k, n, nKvHeads, headDim, positions, this.invFreq, this.cos, this.sin);
  }

  /** o: proj = attn Woᵀ. */
  outProj(layer: number, attn: Float32Array, n: number): void {
    const { dim, nHeads, headDim } = this.spec;
    this.kernels.matmul(this.s.attnProj, attn, this.w.layers[layer]!.wo, n, nHeads * headDim, dim);
  }

  /** add (one of the layer's two): x += proj. */
  residual(x: Float32Array, n: number): void {
    addInPlace(x, this.s.attnProj, n * this.spec.dim);
  }

  /** post_attn_norm: xb = RMSNorm(x) with the layer's FFN-norm weights. */
  postAttnNorm(layer: number, x: Float32Array, n: number): void {
    rmsnorm(this.s.xb, x, this.w.layers[layer]!.ffnNorm, n, this.spec.dim, this.spec.normEps);
  }

  /** mlp_up: gate = xb Wgateᵀ, up = xb Wupᵀ. */
  mlpUp(layer: number, n: number): void {
    const { dim, ffnDim } = this.spec;
    const L = this.w.layers[layer]!;
    this.kernels.matmul(this.s.gate, this.s.xb, L.wGate, n, dim, ffnDim);
    this.kernels.matmul(this.s.up, this.s.xb, L.wUp, n, dim, ffnDim);
  }

  /** act: gate = silu(gate) * up. */
  act(n: number): void {
    swiglu(this.s.gate, this.s.up, n * this.spec.ffnDim);
  }

  /** mlp_down: proj = gate Wdownᵀ. */
  mlpDown(layer: number, n: number): void {
    const { dim, ffnDim } = this.spec;
    this.kernels.matmul(this.s.attnProj, this.s.gate, this.w.layers[layer]!.wDown, n, ffnDim, dim);
  }

  /** logits[i, :] = norm(x[rows[i], :]) Woutᵀ. out: [rows.length, vocabSize]. */
  logits(x: Float32Array, rows: Int32Array, out: Float32Array): void {
    this.finalNorm(x, rows);
    this.lmHead(rows.length, out);
  }

  /** final norm: xb[i, :] = RMSNorm(x[rows[i], :]) for the rows that need logits. */
  finalNorm(x: Float32Array, rows: Int32Array): void {
    const { dim, normEps } = this.spec;
    const r = rows.length;
    this.reserve(r);
    const xb = this.s.xb;
    for (let i = 0; i < r; i++) xb.set(x.subarray(rows[i]! * dim, (rows[i]! + 1) * dim), i * dim);
    rmsnorm(xb, xb, this.w.finalNorm, r, dim, normEps);
  }

  /** lm_head: out = xb[0..r) Woutᵀ, after finalNorm. out: [r, vocabSize]. */
  lmHead(r: number, out: Float32Array): void {
    this.kernels.matmul(out, this.s.xb, this.w.output, r, this.spec.dim, this.spec.vocabSize);
  }
}
