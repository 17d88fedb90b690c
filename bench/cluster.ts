// Decode throughput of the local heterogeneous cluster (one primary and two attention worker
// processes, over the transport) against the single-process engine, on a random
// stories15M-shaped model at batch 1 and 16, with where the cluster's step time goes.
// Prints one JSON line per result on stdout; progress on stderr.
//
//   npx tsx bench/cluster.ts [--batches 1,16] [--prompt-tokens 32] [--decode-tokens 64] [--placement memory|cost]

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine, type EngineConfig } from '../src/engine/engine.js';
import type { Executor } from '../src/engine/types.js';
import { loadModel } from '../src/model/load.js';
import { writeGgufModel } from '../src/model/gguf-llama.js';
import type { ModelSpec } from '../src/model/spec.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { LocalExecutor } from '../src/runtime/local-executor.js';
import { localEngineConfig } from '../src/runtime/local-devices.js';
import { layoutDevices, type ClusterLayout } from '../src/runtime/cluster-layout.js';
import { ClusterExecutor } from '../src/runtime/cluster-executor.js';
import { startLocalCluster } from '../src/runtime/local-cluster.js';
import { randomModel, syntheticVocab } from '../test/helpers/random-model.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'bench', 'out');

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '1,16' },
    'prompt-tokens': { type: 'string', default: '32' },
    'decode-tokens': { type: 'string', default: '64' },
    placement: { type: 'string', default: 'memory' },
    repeats: { type: 'string', default: '3' },
  },
});
const BATCHES = values.batches.split(',').map(Number);
const PROMPT = Number(values['prompt-tokens']);
const DECODE = Number(values['decode-tokens']);
const PLACEMENT = values.placement as 'memory' | 'cost';
const REPEATS = Number(values.repeats);

const emit = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
const log = (m: string): void => { process.stderr.write(`[bench] ${m}\n`); };
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const SPEC_15M: ModelSpec = {
  name: 'random-15M-shape', nLayers: 6, nHeads: 6, nKvHeads: 6, headDim: 48, dim: 288, ffnDim: 768,
  vocabSize: 32000, contextLength: 256, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false,
};

const LAYOUT: ClusterLayout = {
  primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 32 << 20 },
  attention: [{ id: 'attn-1', kvCapacityBytes: 64 << 20 }, { id: 'attn-2', kvCapacityBytes: 32 << 20 }],
  blockSize: 16,
};

interface Run { decodeTokPerS: number; parts: Record<string, number>; steps: number }

/** Decode-only throughput: B requests prefilled, then DECODE tokens each; steps with prefill are excluded. */
async function measure(config: EngineConfig, exec: Executor, batch: number, rep: number): Promise<Run> {
  const engine = new Engine(config, exec);
  for (let i = 0; i < batch; i++) {
    const prompt = Array.from({ length: PROMPT }, (_, j) => 3 + ((j * 31 + i * 7 + rep) % (SPEC_15M.vocabSize - 3)));
    engine.submit({ id: `r${i}`, arrival: 0, promptTokens: prompt, promptLength: PROMPT, maxTokens: DECODE });
  }
  let t = 0;
  while (engine.hasWork()) { const wall = performance.now(); await engine.step(t); t += (performance.now() - wall) / 1000; }
  await engine.releaseFreed();
  const decode = engine.steps.filter((s) => s.prefillTokens === 0 && s.decodeTokens === batch);
  const seconds = decode.reduce((a, s) => a + s.seconds, 0);
  const tokens = decode.reduce((a, s) => a + s.decodeTokens, 0);
  const parts: Record<string, number> = {};
  for (const s of decode) for (const [k, v] of Object.entries(s.parts ?? {})) parts[k] = (parts[k] ?? 0) + v / decode.length;
  return { decodeTokPerS: tokens / seconds, parts, steps: decode.length };
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, 'random-15M-shape.gguf');
  log('writing the random 15M-shaped model');
  writeGgufModel(path, randomModel(SPEC_15M, 15), syntheticVocab(SPEC_15M.vocabSize), { type: 'F32', name: SPEC_15M.name });
  const model = loadModel(path).model;
  const kernels = getKernels('auto');
  kernels.setThreads(1);
  const single = localEngineConfig(SPEC_15M, [{ id: 'local', primary: true, kvCapacityBytes: 256 << 20 }], []);
  log('starting the local cluster (1 primary + 2 attention workers)');
  const cluster = await startLocalCluster({ spec: SPEC_15M, modelPath: path, layout: LAYOUT, timeoutMs: 30000 });
  try {
    const config: EngineConfig = { ...localEngineConfig(SPEC_15M, layoutDevices(LAYOUT), []), placement: PLACEMENT };
    config.redispatch = { ...config.redispatch, enabled: false };
    const exec = new ClusterExecutor(SPEC_15M, cluster.workers);
    for (const batch of BATCHES) {
      const a: Run[] = [], b: Run[] = [];
      for (let r = 0; r < REPEATS; r++) {
        log(`batch ${batch}, repeat ${r + 1}/${REPEATS}`);
        a.push(await measure(single, new LocalExecutor(model, kernels), batch, r));
        b.push(await measure(config, exec, batch, r));
      }
      const ours = median(b.map((x) => x.decodeTokPerS)), base = median(a.map((x) => x.decodeTokPerS));
      const bestB = b.find((x) => x.decodeTokPerS === ours)!;
      emit({ bench: 'cluster_decode', model: SPEC_15M.name, batch, system: 'single-process', decode_tok_s: +base.toFixed(1), samples: a.map((x) => +x.decodeTokPerS.toFixed(1)) });
      emit({
        bench: 'cluster_decode', model: SPEC_15M.name, batch, system: 'local-cluster-1+2', placement: PLACEMENT, decode_tok_s: +ours.toFixed(1),
        ratio_to_single: +(ours / base).toFixed(3), samples: b.map((x) => +x.decodeTokPerS.toFixed(1)),
        step_ms: Object.fromEntries(Object.entries(bestB.parts).map(([k, v]) => [k, +(v * 1000).toFixed(3)])),
      });
    }
  } finally {
    await cluster.close();
  }
}

main().catch((e: unknown) => { process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
