// The server's pure pieces: body validation, the error table, the chat template, choice text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { HetisError, type ErrorCode } from '../src/util/errors.js';
import { DEFAULT_CHAT_TEMPLATE } from '../src/server/chat-template.js';
import { ChoiceText } from '../src/server/choice-text.js';
import { ApiError, shown, toErrorResponse } from '../src/server/errors.js';
import { parseChatBody, parseCompletionBody, DEFAULT_LIMITS, GREEDY_BELOW } from '../src/server/validate.js';
import { repoRoot } from './helpers/shared.js';

const limits = { ...DEFAULT_LIMITS, vocabSize: 100, contextLength: 64 };

function issuesOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.code, 'invalid_request');
    return e.message;
  }
  assert.fail('expected an invalid_request error');
}

test('completion bodies: defaults, prompt forms, and every issue reported with its path', () => {
  const p = parseCompletionBody({ model: 'm', prompt: 'hi' }, limits);
  assert.deepEqual(p, {
    model: 'm', prompt: { kind: 'text', text: 'hi' }, maxTokens: undefined, temperature: 1, topP: 1, topK: 0,
    seed: undefined, stop: [], n: 1, stream: false, includeUsage: false,
  });
  assert.deepEqual(parseCompletionBody({ model: 'm', prompt: ['hi'] }, limits).prompt, { kind: 'text', text: 'hi' });
  assert.deepEqual(parseCompletionBody({ model: 'm', prompt: [1, 2] }, limits).prompt, { kind: 'tokens', tokens: [1, 2] });
  assert.deepEqual(parseCompletionBody({ model: 'm', prompt: [[3]] }, limits).prompt, { kind: 'tokens', tokens: [3] });
  assert.equal(parseCompletionBody({ model: 'm', prompt: 'x', stop: 'END', max_tokens: null }, limits).stop[0], 'END');
  // top_p 0 keeps the most likely token only.
  const greedy = parseCompletionBody({ model: 'm', prompt: 'x', top_p: 0 }, limits);
  assert.equal(greedy.topK, 1);

  const msg = issuesOf(() => parseCompletionBody({
    prompt: ['a', 'b'], max_tokens: 0, temperature: 'hot', top_p: 1.5, seed: 1.5, n: 0, stream: 'yes',
    stop: ['a', 'b', 'c', 'd', ''], stream_options: { include_usage: 1 }, echo: true,
  }, limits));
  for (const path of ['model', 'prompt', 'max_tokens', 'temperature', 'top_p', 'seed', 'n', 'stream', 'stop', 'stop[4]', 'stream_options.include_usage', 'echo']) {
    assert.ok(msg.includes(`${path}: `), `${path} in: ${msg}`);
  }
  assert.match(issuesOf(() => parseCompletionBody({ model: 'm', prompt: [1, 100] }, limits)), /prompt\[1\]: token ids must be integers in \[0, 100\)/);
  assert.match(issuesOf(() => parseCompletionBody('text', limits)), /^body: must be a JSON object/);
});

test('chat bodies: roles, text parts, max_completion_tokens', () => {
  const p = parseChatBody({
    model: 'm', max_completion_tokens: 5, max_tokens: 9,
    messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'assistant', content: null }],
  }, limits);
  assert.equal(p.maxTokens, 5);
  assert.deepEqual(p.messages, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'ab' }, { role: 'assistant', content: '' }]);
  const msg = issuesOf(() => parseChatBody({ model: 'm', messages: [{ role: 'tool', content: 'x' }, { role: 'user', content: [{ type: 'image_url' }] }, 3] }, limits));
  assert.match(msg, /messages\[0\]\.role: /);
  assert.match(msg, /messages\[1\]\.content\[0\]: /);
  assert.match(msg, /messages\[2\]: /);
  assert.match(issuesOf(() => parseChatBody({ model: 'm', messages: [] }, limits)), /messages: /);
});

test('limits: n, stop strings, max_tokens, messages, content parts, lone surrogates, tiny temperatures', () => {
  const base = { model: 'm', prompt: 'x' };
  assert.equal(parseCompletionBody({ ...base, n: 8 }, limits).n, 8);
  assert.match(issuesOf(() => parseCompletionBody({ ...base, n: 9 }, limits)), /^n: must be an integer in \[1, 8\], got 9$/);
  assert.deepEqual(parseCompletionBody({ ...base, stop: ['s'.repeat(256), '\u{1F600}'.repeat(256)] }, limits).stop.length, 2);
  assert.match(issuesOf(() => parseCompletionBody({ ...base, stop: ['s'.repeat(257)] }, limits)), /^stop\[0\]: must be at most 256 characters, got 257$/);
  assert.equal(parseCompletionBody({ ...base, max_tokens: 64 }, limits).maxTokens, 64);
  assert.match(issuesOf(() => parseCompletionBody({ ...base, max_tokens: 65 }, limits)), /^max_tokens: must be an integer in \[1, 64\]/);
  assert.match(issuesOf(() => parseCompletionBody({ ...base, max_tokens: 2 ** 60 }, limits)), /^max_tokens: must be an integer, got number/);
  const many = (k: number) => Array.from({ length: k }, () => ({ role: 'user', content: 'a' }));
  assert.equal(parseChatBody({ model: 'm', messages: many(256) }, limits).messages.length, 256);
  assert.match(issuesOf(() => parseChatBody({ model: 'm', messages: many(257) }, limits)), /^messages: at most 256 messages, got 257$/);
  const parts = (k: number) => [{ role: 'user', content: Array.from({ length: k }, () => ({ type: 'text', text: 'a' })) }];
  assert.equal(parseChatBody({ model: 'm', messages: parts(256) }, limits).messages[0]!.content.length, 256);
  assert.match(issuesOf(() => parseChatBody({ model: 'm', messages: parts(257) }, limits)), /^messages\[0\]\.content: at most 256 parts/);
  assert.match(issuesOf(() => parseChatBody({ model: 'm', messages: [{ role: 'assistant', content: 'x', tool_calls: [{}] }] }, limits)), /^messages\[0\]\.tool_calls: is not supported/);
  // A surrogate pair is fine; a lone one has no UTF-8 form.
  assert.equal(parseCompletionBody({ ...base, prompt: 'a\u{1F600}' }, limits).prompt.kind, 'text');
  for (const body of [{ ...base, prompt: 'a\ud800' }, { ...base, prompt: ['\udc00'] }, { ...base, stop: 'x\ud800' }]) {
    assert.match(issuesOf(() => parseCompletionBody(body, limits)), /must be valid Unicode/);
  }
  assert.match(issuesOf(() => parseChatBody({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: '\ud800' }] }] }, limits)), /messages\[0\]\.content\[0\]\.text: must be valid Unicode/);
  // A temperature so small that 1/T overflows samples greedily.
  assert.equal(parseCompletionBody({ ...base, temperature: 5e-324 }, limits).temperature, 0);
  assert.equal(parseCompletionBody({ ...base, temperature: GREEDY_BELOW }, limits).temperature, GREEDY_BELOW);
  // Huge or deep values are never echoed whole, and a message lists at most 20 issues.
  const huge = issuesOf(() => parseCompletionBody({ ...base, temperature: 'x'.repeat(100_000), prompt: [[[[[[[[1]]]]]]]] }, limits));
  assert.ok(huge.length < 300, huge);
  const lots = issuesOf(() => parseCompletionBody({ ...base, stop: Array.from({ length: 10_000 }, () => 1) }, limits));
  assert.match(lots, /; and 9981 more$/);
});

test('shown: client values quoted short, containers never walked', () => {
  assert.equal(shown('abc'), '"abc"');
  assert.equal(shown('x'.repeat(100), 4), '"xxxx..."');
  assert.equal(shown(12.5), '12.5');
  assert.equal(shown(null), 'null');
  assert.equal(shown([1, 2, 3]), 'an array of 3');
  assert.equal(shown({ a: 1 }), 'an object');
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.equal(shown(deep), 'an array of 1');
});

test('the error table: 4xx messages shown, 5xx generic, every library code mapped', () => {
  const codes: ErrorCode[] = ['bad_file', 'unsupported', 'bad_input', 'internal'];
  const statuses = codes.map((c) => toErrorResponse(new HetisError(c, `detail ${c}`)).status);
  assert.deepEqual(statuses, [500, 400, 400, 500]);
  const input = toErrorResponse(new HetisError('bad_input', 'prompt too odd'));
  assert.deepEqual(input.body, { error: { message: 'prompt too odd', type: 'invalid_request_error', param: null, code: 'invalid_request' } });
  const file = toErrorResponse(new HetisError('bad_file', '/secret/path: truncated'));
  assert.ok(!file.body.error.message.includes('secret'));
  assert.equal(file.serverFault, true);
  const bug = toErrorResponse(new TypeError('x is undefined'));
  assert.deepEqual(bug.body.error, { message: 'internal server error', type: 'server_error', param: null, code: 'internal' });
  assert.equal(toErrorResponse('thrown string').status, 500);
  assert.equal(toErrorResponse(new ApiError('model_not_found', 'no such model', 'model')).body.error.param, 'model');
  assert.equal(toErrorResponse(new ApiError('invalid_api_key', 'no key')).status, 401);
  assert.equal(toErrorResponse(new ApiError('payload_too_large', 'big')).status, 413);
  const busy = toErrorResponse(new ApiError('rate_limit_exceeded', 'full', null, { 'retry-after': '1' }));
  assert.deepEqual([busy.status, busy.body.error.type, busy.headers], [429, 'requests', { 'retry-after': '1' }]);
  assert.deepEqual(['unsupported_media_type', 'request_timeout', 'headers_too_large'].map((c) => toErrorResponse(new ApiError(c as 'request_timeout', '')).status), [415, 408, 431]);
});

test('the default chat template: system messages first, then the turns, then the assistant prefix', () => {
  const prompt = DEFAULT_CHAT_TEMPLATE.render([
    { role: 'user', content: 'Hi' }, { role: 'system', content: 'Be kind.' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Who?' },
  ]);
  assert.equal(prompt, 'System: Be kind.\nUser: Hi\nAssistant: Hello.\nUser: Who?\nAssistant:');
  assert.deepEqual(DEFAULT_CHAT_TEMPLATE.stop, ['\nUser:', '\nSystem:', '\nAssistant:']);
});

test('choice text: whole characters only, no part of a stop string, leading whitespace trimmed for chat', () => {
  const { vocab } = loadModel(resolve(repoRoot, 'models/hetis-kjv.gguf'));
  const tok = new Tokenizer(vocab!);
  const prompt = tok.encode('Say', { bos: true });
  // A two-byte character arrives as two byte tokens: nothing until it is whole.
  const ids = tok.encode('é', { bos: false }).filter((id) => tok.piece(id).trim() !== '');
  assert.equal(ids.length, 2);
  const t = new ChoiceText(tok, prompt, [], false);
  assert.deepEqual(t.push(ids[0]!), { text: '', stopped: false });
  assert.deepEqual(t.push(ids[1]!), { text: 'é', stopped: false });

  // A stop string split over tokens: the part seen first is held, then dropped.
  const words = tok.encode(' the LORD said', { bos: false }).slice(1);
  const s = new ChoiceText(tok, prompt, ['LORD sa'], false);
  let shown = '';
  let stopped = false;
  for (const id of words) {
    const r = s.push(id);
    shown += r.text;
    if (r.stopped) { stopped = true; break; }
  }
  assert.equal(stopped, true);
  assert.equal(shown, ' the ');

  // Held text that was not a stop string comes out at the end.
  const h = new ChoiceText(tok, prompt, [' the end'], true);
  const r1 = h.push(tok.encode(' the', { bos: false }).at(-1)!);
  assert.deepEqual(r1, { text: '', stopped: false });
  assert.deepEqual(h.end(), { text: 'the', stopped: false });
});
