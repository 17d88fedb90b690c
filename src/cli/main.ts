#!/usr/bin/env node
// Owns: the `hetis` command line: option parsing and wiring of commands to the library.
// Must not: contain model, planning or serving logic.

import { Command, Option } from 'commander';
import { runCommand, num } from './run.js';
import { generateCommand } from './generate.js';
import { convertCommand } from './convert.js';
import { planCommand } from './plan.js';
import { simulateCommand } from './simulate.js';
import { calibrateCommand } from './calibrate.js';
import { profileCommand, DEFAULT_PROFILE_PATH } from './profile.js';
import { serveCommand } from './serve.js';
import { workerCommand } from './worker.js';
import { benchCommand } from './bench.js';

const program = new Command();
program
  .name('hetis')
  .description('Serve LLMs on clusters of mixed devices: dense work on the fast ones, per-head decode attention on all of them.')
  .version('0.1.0');

program
  .command('generate')
  .description('generate text for one prompt, streaming tokens to stdout (tokens/s on stderr)')
  .option('--model <path>', 'GGUF file or llama2.c checkpoint (default: the built-in model)')
  .option('--tokenizer <path>', 'llama2.c tokenizer.bin (a GGUF carries its own)')
  .option('--prompt <text>', 'prompt text', '')
  .option('--max-tokens <n>', 'tokens to generate at most', num('--max-tokens', true), 256)
  .option('--temperature <t>', 'sampling temperature; 0 = greedy', num('--temperature'), 0)
  .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', num('--top-p'), 1)
  .option('--top-k <k>', 'sample among the k most likely tokens; 0 = all', num('--top-k', true), 0)
  .option('--seed <s>', 'random seed for sampling', num('--seed', true), 0)
  .option('--stop <text...>', 'stop before any of these strings')
  .option('--threads <n>', 'threads for the matrix kernels', num('--threads', true), 1)
  .addOption(new Option('--kernels <kind>', 'matrix kernels').choices(['auto', 'native', 'reference']).default('auto'))
  .action((opts) => runCommand(() => generateCommand(opts)));

program
  .command('convert')
  .description('write a model (GGUF or llama2.c checkpoint + tokenizer) as a GGUF file other tools can load')
  .requiredOption('--model <path>', 'input model')
  .option('--tokenizer <path>', 'llama2.c tokenizer.bin for a llama2.c checkpoint')
  .requiredOption('--out <path>', 'output GGUF path')
  .addOption(new Option('--type <type>', 'tensor type of the weight matrices').choices(['F32', 'F16', 'Q8_0']).default('F32'))
  .option('--name <name>', 'general.name to record')
  .action((opts) => runCommand(() => convertCommand(opts)));

program
  .command('profile')
  .description("measure this machine's CPU as a worker runs (dense ops, attention, transport between worker processes) and write a profile the cost model reads")
  .option('--out <file>', 'profile JSON to write', DEFAULT_PROFILE_PATH)
  .option('--model <name|path>', 'model whose shape to profile: catalog name, GGUF, llama2.c or config.json (default: the stories15M shape); weights are random')
  .option('--threads <n>', 'threads for the matrix kernels', num('--threads', true), 1)
  .option('--quick', 'a reduced grid and fewer repeats (seconds; for tests and smoke runs)')
  .option('--repeats <n>', 'profile this many times in a row and keep each number\'s median (a shared machine\'s speed moves from minute to minute)', num('--repeats', true), 1)
  .addOption(new Option('--kernels <kind>', 'matrix kernels').choices(['auto', 'native', 'reference']).default('auto'))
  .addOption(new Option('--clock <kind>', 'time source: process CPU time (default with one thread) or wall time').choices(['cpu', 'wall']))
  .action((opts) => runCommand(() => profileCommand(opts)));

program
  .command('calibrate')
  .description('compare the cost model with Vidur-format GPU profiles (MAPE per op, dense layer, link); --fit fits device efficiencies')
  .requiredOption('--vidur <dir>', 'folder with compute/<device>/<org>/<model>/mlp.csv and network/<topology>/*.csv')
  .option('--fit', 'fit efficiencies, kernel overhead and link latency/bandwidth, and show errors after fitting')
  .option('--json', 'one JSON line per (device, model, op), then the rest; last line {"scope":"overall",...}')
  .action((opts) => runCommand(() => calibrateCommand(opts)));

program
  .command('plan')
  .description('plan a deployment: primary devices, TP/PP layout, KV capacity per device, predicted rate and TPOT, and the alternatives')
  .requiredOption('--cluster <file|name>', 'cluster YAML file or built-in name (e.g. paper)')
  .requiredOption('--model <name|path>', 'catalog model name, GGUF file or Hugging Face config.json')
  .option('--workload <file|preset>', 'workload summary file or preset (sharegpt, humaneval, longbench, azure-conv, azure-code)', 'sharegpt')
  .option('--rate <rps>', 'offered request rate at which to predict latency', num('--rate'))
  .option('--tpot-slo <seconds>', 'time-per-output-token SLO', num('--tpot-slo'), 0.1)
  .addOption(new Option('--objective <kind>', 'what to optimise').choices(['max-rate', 'min-latency']).default('max-rate'))
  .option('--grow-threshold <fraction>', 'a slower tier joins the primaries only if it improves the objective by more than this', num('--grow-threshold'), 0.05)
  .option('--json', 'print one JSON object')
  .action((opts) => runCommand(() => planCommand(opts)));

program
  .command('simulate')
  .description('run a workload through the engine on a virtual clock, for Hetis, its ablations and baselines')
  .requiredOption('--cluster <file|name>', "cluster YAML file, built-in name (e.g. paper), or 'local': the cluster `hetis serve` starts on this machine")
  .requiredOption('--model <name|path>', 'catalog model name, GGUF file or Hugging Face config.json')
  .option('--workload <file|preset>', 'trace file or preset (sharegpt, humaneval, longbench, azure-conv, azure-code)', 'sharegpt')
  .option('--primary-kv <bytes>', '--cluster local: KV cache of the primary device (as hetis serve)', '32MiB')
  .option('--attention <list>', "--cluster local: attention workers, as hetis serve, e.g. '64MiB,32MiB:2'", '64MiB,32MiB:2')
  .option('--tp <n>', '--cluster local: tensor-parallel ranks of the primary', num('--tp', true), 1)
  .option('--pp <n>', '--cluster local: pipeline stages of the primary', num('--pp', true), 1)
  .option('--profile <file>', '--cluster local: profile of this machine (default .hetis-cache/profile-<model>.json)')
  .option('--rate <rps[,rps...]>', 'request rate(s); a trace is rescaled to each')
  .option('--duration <seconds>', 'keep arrivals in the first S seconds', num('--duration'))
  .option('--count <n>', 'keep the first N requests', num('--count', true))
  .option('--systems <list>', 'comma-separated systems', 'hetis,hetis-no-attn-workers,hetis-static-split,hetis-no-redispatch,homogeneous,hexgen')
  .option('--seed <n>', 'seed of arrivals and lengths', num('--seed', true), 0)
  .option('--tpot-slo <seconds>', 'TPOT SLO for planning and goodput', num('--tpot-slo'), 0.1)
  .option('--ttft-slo <seconds>', 'TTFT SLO for goodput', num('--ttft-slo'), 5)
  .option('--json', 'one JSON line per system and rate')
  .option('--out <dir>', 'write results.json, results.csv, per-request CSVs and charts (SVG and PNG)')
  .action((opts) => runCommand(() => simulateCommand(opts)));

program
  .command('serve')
  .description('serve the model over an OpenAI-compatible HTTP API, on a local cluster of worker processes (one primary, attention workers) by default')
  .option('--model <path>', 'GGUF file or llama2.c checkpoint (default: the built-in model)')
  .option('--tokenizer <path>', 'llama2.c tokenizer.bin (a GGUF carries its own)')
  .option('--name <name>', 'model name clients use (default: the file name without extension)')
  .option('--host <host>', 'address to bind the HTTP server to', '127.0.0.1')
  .option('--port <n>', 'HTTP port (0: any free port)', num('--port', true), 8000)
  .option('--api-key <key>', 'require this Bearer key on every request (default: HETIS_API_KEY if set)', process.env['HETIS_API_KEY'])
  .option('--max-queued <n>', 'requests waiting beyond the running ones before new ones get 429', num('--max-queued', true), 256)
  .option('--max-connections <n>', 'HTTP connections at once', num('--max-connections', true), 1024)
  .option('--max-body <bytes>', 'largest request body', '1MiB')
  .option('--cluster <file>', 'cluster YAML whose devices carry the addresses of workers started with `hetis worker` (planned, then served)')
  .option('--token <secret>', 'cluster token workers require (default: HETIS_TOKEN; a random one for a local cluster)')
  .option('--primary-kv <bytes>', 'KV cache of the primary device (local cluster)', '32MiB')
  .option('--attention <list>', "attention workers of the local cluster: KV size and optional slowdown each, e.g. '64MiB,32MiB:2'; 'none' for none", '64MiB,32MiB:2')
  .option('--tp <n>', 'tensor-parallel ranks of the primary (local cluster)', num('--tp', true), 1)
  .option('--pp <n>', 'pipeline stages of the primary (local cluster)', num('--pp', true), 1)
  .option('--in-process', 'no worker processes: the model and every head in this process')
  .option('--profile <file>', 'profile of this machine (default: .hetis-cache/profile-<model>.json, measured quickly when missing)')
  .option('--threads <n>', 'matrix-kernel threads per worker', num('--threads', true), 1)
  .addOption(new Option('--kernels <kind>', 'matrix kernels').choices(['auto', 'native', 'reference']).default('auto'))
  .action((opts) => runCommand(() => serveCommand(opts)));

program
  .command('worker')
  .description('run one worker (one device) that `hetis serve --cluster FILE` connects to: a primary or an attention worker, as the engine assigns')
  .requiredOption('--listen <address>', "HOST:PORT, ':PORT', or unix:/path/to.sock")
  .option('--token <secret>', 'cluster token peers must present (default: HETIS_TOKEN)')
  .option('--threads <n>', 'matrix-kernel threads', num('--threads', true), 1)
  .option('--kv-capacity <bytes>', 'most KV this worker may be assigned, e.g. 2GiB')
  .addOption(new Option('--kernels <kind>', 'matrix kernels').choices(['auto', 'native', 'reference']).default('auto'))
  .action((opts) => runCommand(() => workerCommand(opts)));

program
  .command('bench')
  .description('benchmark a running server (hetis serve or any OpenAI-compatible one): streaming completions at Poisson arrivals per offered rate; throughput, TTFT, TPOT and latency percentiles per rate')
  .requiredOption('--url <url>', "the server's base URL, e.g. http://127.0.0.1:8000")
  .option('--model <name>', 'model to request (default: the first one GET /v1/models lists)')
  .option('--api-key <key>', 'Bearer key to send (default: HETIS_API_KEY if set)', process.env['HETIS_API_KEY'])
  .option('--rates <rps,...>', 'offered request rates (requests per second), run in turn', '0.5,1,2,4')
  .option('--duration <seconds>', 'send arrivals for this long at each rate (default 20, unless --count is given)', num('--duration'))
  .option('--count <n>', 'send this many requests at each rate (with --duration: whichever ends first)', num('--count', true))
  .option('--max-tokens <n>', 'max_tokens of each request', num('--max-tokens', true), 64)
  .option('--prompt-tokens <n>', 'approximate length of the generated prompts, tokens', num('--prompt-tokens', true), 32)
  .addOption(new Option('--prompts <kind>', 'generated prompts (seeded words) or the built-in short ones').choices(['generated', 'builtin']).default('generated'))
  .option('--prompt-file <file>', 'prompts to use in turn instead, one per line')
  .option('--temperature <t>', 'sampling temperature; 0 = greedy', num('--temperature'), 0)
  .option('--seed <n>', 'seed of the arrival times and generated prompts', num('--seed', true), 0)
  .option('--timeout <seconds>', 'a request not finished this long after it was sent counts as failed', num('--timeout'), 120)
  .option('--no-warmup', 'skip the unmeasured warm-up request before the first rate')
  .option('--json', 'one JSON line per rate')
  .action((opts) => runCommand(() => benchCommand(opts)));

await program.parseAsync(process.argv);
