#!/usr/bin/env node
// Owns: building native/build/Release/hetis_native.node (OpenBLAS kernels) with node-gyp at install/build time.
// Must not: fail the install. Without a compiler or OpenBLAS it warns in one line and exits 0.
//
// `--require` (CI): a failed build exits 1 instead of warning, so CI cannot pass on the fallback.
// Env: HETIS_VERBOSE_BUILD=1 streams node-gyp's output; HETIS_FORCE_NATIVE_BUILD=1 rebuilds even when up to date.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const sources = [join(nativeDir, 'hetis_native.c'), join(nativeDir, 'small_rows.h'), join(nativeDir, 'binding.gyp')];
const output = join(nativeDir, 'build', 'Release', 'hetis_native.node');
const verbose = process.env.HETIS_VERBOSE_BUILD === '1';
const force = process.env.HETIS_FORCE_NATIVE_BUILD === '1';
/** Node's install prefix (/usr for Debian's node): npm and the headers live under it. */
const nodePrefix = dirname(dirname(process.execPath));

/** node-gyp as [command, leading args]: npm's own during npm scripts, else npm's bundled copy, else npx. */
function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  const bundled = join(nodePrefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, [bundled]];
  return ['npx', ['--yes', 'node-gyp']];
}

/** --nodedir: npm's config when set, else local headers next to this node (so no download), else node-gyp's default. */
function nodedirArgs() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return [`--nodedir=${configured}`];
  const local = join(nodePrefix, 'include', 'node');
  if (existsSync(join(local, 'node_api.h')) && existsSync(join(local, 'common.gypi'))) return [`--nodedir=${nodePrefix}`];
  return [];
}

/** One short reason for a failed build, read from node-gyp's output. */
function failureReason(log, status) {
  const rules = [
    [/cblas\.h: No such file/, 'OpenBLAS headers not found; install libopenblas-dev'],
    [/cannot find -lopenblas|openblas.*No such file/i, 'OpenBLAS library not found; install libopenblas-dev'],
    [/ERR! find Python|Could not find any Python/, 'Python 3 not found (node-gyp needs it)'],
    [/\b(cc|gcc|make): (command )?not found|not found: (make|cc)|spawn (make|cc) ENOENT/, 'no C toolchain (cc, make); install build-essential'],
    [/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|getaddrinfo/, 'could not download Node headers; set npm config nodedir'],
  ];
  for (const [pattern, reason] of rules) if (pattern.test(log)) return reason;
  return `node-gyp exited with status ${status}`;
}

/** Loads the built addon in this process; returns its OpenBLAS config string, or throws. */
function probe() {
  const addon = createRequire(import.meta.url)(output);
  const out = new Float32Array(1);
  addon.sgemm(out, new Float32Array([2]), new Float32Array([3]), 1, 1, 1);
  if (out[0] !== 6) throw new Error(`self-test gave ${out[0]}, expected 6`);
  return addon.config();
}

const required = process.argv.includes('--require');

function warn(reason) {
  if (required) {
    console.error(`hetis: native kernels not built (${reason})`);
    process.exitCode = 1;
    return;
  }
  console.warn(`hetis: native kernels not built (${reason}); the TypeScript reference kernels will be used`);
}

function upToDate() {
  if (force || !existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return sources.every((file) => statSync(file).mtimeMs <= built);
}

function main() {
  if (upToDate()) {
    try {
      probe();
      return;
    } catch {
      // stale or unloadable: rebuild below
    }
  }
  const [command, lead] = nodeGyp();
  const result = spawnSync(command, [...lead, 'rebuild', ...nodedirArgs()], {
    cwd: nativeDir,
    encoding: 'utf8',
    stdio: verbose ? 'inherit' : 'pipe',
  });
  if (result.error) {
    warn(`could not run ${command}: ${result.error.message}`);
    return;
  }
  if (result.status !== 0) {
    const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    if (!verbose) process.stderr.write(log.endsWith('\n') || log === '' ? log : `${log}\n`);
    warn(failureReason(log, result.status));
    return;
  }
  try {
    console.log(`hetis: native kernels built (${relative(root, output)}; ${probe()})`);
  } catch (err) {
    warn(`built, but it does not load: ${String(err instanceof Error ? err.message : err).split('\n')[0]}`);
  }
}

main();
