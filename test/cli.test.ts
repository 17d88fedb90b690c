// The hetis command end to end: generate streams text and reports speed; bad files and bad
// options give one line naming the problem, never a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingShared, repoRoot, stories260K, tok512 } from './helpers/shared.js';

function hetis(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], {
    cwd: repoRoot, encoding: 'utf8', timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the built command runs directly, as `npx hetis` runs it (executable, with its shebang)', (t) => {
  const bin = join(repoRoot, 'dist/cli/main.js');
  if (!existsSync(bin)) { t.skip('dist/ is not built (npm run build)'); return; }
  assert.notEqual(statSync(bin).mode & 0o111, 0, `${bin} is not executable`);
  const r = spawnSync(bin, ['--help'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, String(r.stderr));
  assert.match(r.stdout, /serve/);
});

test('--help lists the commands', () => {
  const r = hetis('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /generate/);
  assert.match(r.stdout, /convert/);
});

test('generate and convert on stories260K, then generate from the GGUF', (t) => {
  const skip = missingShared(stories260K, tok512);
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'hetis-cli-'));
  try {
    const a = hetis('generate', '--model', stories260K, '--tokenizer', tok512, '--prompt', 'Once upon a time', '--max-tokens', '20');
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /^Once upon a time, there was a little girl named Lily/);
    assert.match(a.stderr, /generated 20 tokens \([\d.]+ tok\/s\)/);
    const gguf = join(dir, 'm.gguf');
    const c = hetis('convert', '--model', stories260K, '--tokenizer', tok512, '--out', gguf, '--type', 'F16');
    assert.equal(c.status, 0, c.stderr);
    const b = hetis('generate', '--model', gguf, '--prompt', 'Once upon a time', '--max-tokens', '20');
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /^Once upon a time, there was a little girl named Lily/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad files and bad options: one clear line each, exit 1, no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hetis-cli-'));
  try {
    const junk = join(dir, 'junk.gguf');
    writeFileSync(junk, Buffer.from('GGUF\x03\x00\x00\x00short'));
    const cases: [string[], RegExp][] = [
      [['generate', '--model', join(dir, 'missing.gguf')], /missing\.gguf: no such file/],
      [['generate', '--model', junk], /junk\.gguf: truncated/],
      [['generate', '--model', junk, '--max-tokens', 'lots'], /argument 'lots' is invalid. --max-tokens must be an integer/],
    ];
    for (const [args, message] of cases) {
      const r = hetis(...args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace leaked');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
