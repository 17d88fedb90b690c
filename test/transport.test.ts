// The transport: frames round-trip every dtype bit-exactly however the stream is cut; bad magic,
// other versions and oversized frames are clear errors; over TCP and a unix socket requests pipeline
// and match out of order, remote errors keep their code and message, the token is checked, a killed
// worker or a silent one fails pending requests with a TransportError. Never asserts on wall time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { HetisError } from '../src/util/errors.js';
import {
  FrameDecoder, FrameKind, PROTOCOL_VERSION, RemoteError, TransportError, connect, decodeFrame, encodeFrame, encodeFrameBytes,
  formatAddress, listen, parseAddress, type Frame, type Handler, type Message, type Peer, type Tensor, type TransportServer,
} from '../src/runtime/transport/index.js';
import { createRng } from '../src/util/rng.js';
import { tempDir } from './helpers/files.js';
import { repoRoot } from './helpers/shared.js';

const bytesOf = (t: Tensor): Buffer => Buffer.from(t.buffer, t.byteOffset, t.byteLength);

function assertSameTensors(got: readonly Tensor[], want: readonly Tensor[]): void {
  assert.equal(got.length, want.length);
  got.forEach((t, i) => {
    assert.equal(t.constructor, want[i]!.constructor, `tensor ${i} type`);
    assert.ok(bytesOf(t).equals(bytesOf(want[i]!)), `tensor ${i} bytes`);
    assert.equal((t.byteOffset) % t.BYTES_PER_ELEMENT, 0, `tensor ${i} aligned`);
  });
}

function frame(over: Partial<Frame> = {}): Frame {
  return { kind: FrameKind.request, flags: 0, id: 7, method: 'step', meta: null, tensors: [], ...over };
}

/** Tensors of every dtype with random bits (NaN payloads included), odd lengths to force padding. */
function everyDtype(seed: number, n = 5): Tensor[] {
  const rng = createRng(seed);
  const bits = (k: number): Uint8Array => Uint8Array.from({ length: k }, () => Math.floor(rng.next() * 256));
  return [
    new Float32Array(bits(4 * n).buffer), new Int32Array(bits(4 * (n + 1)).buffer),
    bits(n + 2), new Uint16Array(bits(2 * (n + 3)).buffer), new Float32Array(0),
  ];
}

test('frames round-trip every dtype, empty and zero tensors and unicode meta', { timeout: 5000 }, () => {
  const cases: Frame[] = [
    frame({ tensors: everyDtype(1), meta: { text: 'héllo ✓ 日本 🎉', n: [1, 2.5, null, true] } }),
    frame({ kind: FrameKind.response, id: 0xffffffff, method: '', meta: 'x', tensors: [] }),
    frame({ kind: FrameKind.notify, id: 0, tensors: [new Uint8Array(0), new Int32Array(0)] }),
  ];
  for (const f of cases) {
    const bytes = encodeFrameBytes(f);
    assert.equal(bytes.length % 8, 0, 'frames are whole multiples of 8 bytes');
    const back = decodeFrame(bytes);
    assert.deepEqual({ ...back, tensors: [] }, { ...f, tensors: [] });
    assertSameTensors(back.tensors, f.tensors);
  }
});

test('decoded tensors are views when aligned and copies when not', { timeout: 5000 }, () => {
  const f = frame({ tensors: [new Float32Array([1, 2, 3]), new Uint16Array([4, 5])] });
  const aligned = new Uint8Array(encodeFrameBytes(f));
  assert.equal(decodeFrame(aligned).tensors[0]!.buffer, aligned.buffer, 'aligned: a view, no copy');
  const shifted = new Uint8Array(aligned.length + 1).subarray(1);
  shifted.set(aligned);
  const back = decodeFrame(shifted);
  assert.notEqual(back.tensors[0]!.buffer, shifted.buffer, 'misaligned: copied');
  assertSameTensors(back.tensors, f.tensors);
});

test('the decoder takes a stream cut anywhere, byte by byte or in random chunks', { timeout: 10000 }, () => {
  const frames = [0, 1, 2, 3].map((i) => frame({ id: i, tensors: everyDtype(i, i * 3), meta: { i, s: 'ü'.repeat(i) } }));
  const stream = Buffer.concat(frames.map((f) => encodeFrameBytes(f)));
  const check = (cuts: number[]): void => {
    const dec = new FrameDecoder();
    const got: Frame[] = [];
    let at = 0;
    for (const cut of [...cuts.filter((c) => c < stream.length)].sort((a, b) => a - b).concat(stream.length)) {
      got.push(...dec.push(stream.subarray(at, cut)));
      at = cut;
    }
    assert.equal(got.length, frames.length);
    got.forEach((g, i) => {
      assert.deepEqual(g.meta, frames[i]!.meta);
      assertSameTensors(g.tensors, frames[i]!.tensors);
    });
    assert.equal(dec.bufferedBytes, 0);
  };
  check(Array.from({ length: stream.length }, (_, i) => i)); // byte by byte
  fc.assert(fc.property(fc.array(fc.nat(stream.length), { maxLength: 40 }), check), { seed: 42, numRuns: 300 });
});

test('an oversized frame is refused from its header, before it is buffered', { timeout: 5000 }, () => {
  const big = frame({ tensors: [new Float32Array(1024)] });
  assert.throws(() => encodeFrame(big, 1000), (e: unknown) => e instanceof HetisError && e.code === 'bad_input' && /exceeds the limit of 1000 bytes/.test(e.message));
  const bytes = encodeFrameBytes(big);
  const dec = new FrameDecoder({ maxFrameBytes: 1000, who: 'worker at h:1' });
  assert.throws(() => dec.push(bytes.subarray(0, 24)), /worker at h:1 sent a frame of 4\d{3} bytes exceeds the limit of 1000 bytes/);
  assert.throws(() => dec.push(bytes.subarray(24)), /exceeds the limit/, 'a failed decoder stays failed');
  const huge = encodeFrameBytes(frame({ tensors: [new Float32Array(1)] }));
  huge.writeUInt32LE(0x40000000, 19); // a peer claiming 2^30 floats (4 GiB): past 2^31, refused by size
  assert.throws(() => decodeFrame(huge), /frame of 4294967\d{3} bytes exceeds the limit of 1073741824 bytes/);
});

test('bad magic and another protocol version are clear errors', { timeout: 5000 }, () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n')), /peer does not speak the hetis protocol \(expected magic 'HTS1', got 'GET '\)/);
  // long enough that its bytes 16..17 read as a huge tensor count: still refused at once
  assert.throws(() => new FrameDecoder().push(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')), /got 'HTTP'/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([0, 1, 2, 3, 4, 5])), /got 0x00010203/);
  const v2 = encodeFrameBytes(frame());
  v2.writeUInt16LE(2, 4);
  assert.throws(() => new FrameDecoder().push(v2.subarray(0, 6)), (e: unknown) =>
    e instanceof HetisError && e.code === 'unsupported' && e.message === `peer speaks hetis protocol v2; this hetis speaks v${PROTOCOL_VERSION}`);
  const kind = encodeFrameBytes(frame());
  kind.writeUInt8(99, 6);
  assert.throws(() => decodeFrame(kind), /unknown kind 99/);
});

test('addresses: every form parses and prints back; bad ones say what is accepted', { timeout: 5000 }, () => {
  assert.deepEqual(parseAddress('10.0.0.7:7070'), { kind: 'tcp', host: '10.0.0.7', port: 7070 });
  assert.deepEqual(parseAddress(':7070'), { kind: 'tcp', host: '127.0.0.1', port: 7070 });
  assert.deepEqual(parseAddress('7070'), { kind: 'tcp', host: '127.0.0.1', port: 7070 });
  assert.deepEqual(parseAddress('[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
  assert.deepEqual(parseAddress('node-3.cluster:80'), { kind: 'tcp', host: 'node-3.cluster', port: 80 });
  assert.deepEqual(parseAddress('unix:/tmp/w.sock'), { kind: 'unix', path: '/tmp/w.sock' });
  for (const s of ['10.0.0.7:7070', '[::1]:9', 'unix:/tmp/w.sock']) assert.equal(formatAddress(parseAddress(s)), s);
  for (const [bad, why] of [['', /empty/], ['h:99999', /port '99999'/], ['h:x', /port 'x'/], ['::1:80', /brackets/], ['[::1]80', /\[::1\]:PORT/], ['unix:', /path is empty/], ['a b:1', /host 'a b'/]] as const) {
    assert.throws(() => parseAddress(bad), (e: unknown) => e instanceof HetisError && e.code === 'bad_input' && why.test(e.message) && /expected HOST:PORT/.test(e.message), bad);
  }
});

const echo: Handler = (m) => ({ method: m.method, meta: m.meta, tensors: m.tensors });

/** Runs body with a listener and a connected client; both are closed after, whatever happens. */
async function withPair(address: string, handler: Handler, body: (client: Peer, server: TransportServer) => Promise<void>, token?: string): Promise<void> {
  const server = await listen(address, token === undefined ? { handler } : { handler, token });
  let client: Peer | undefined;
  try {
    client = await connect(server.address, token === undefined ? {} : { token });
    await body(client, server);
  } finally {
    await client?.close();
    await server.close();
  }
}

for (const where of ['tcp', 'unix'] as const) {
  test(`over ${where}: a request with tensors comes back bit-exact, large ones too`, { timeout: 10000 }, async () => {
    const address = where === 'tcp' ? '127.0.0.1:0' : `unix:${join(tempDir('transport'), 'w.sock')}`;
    let path = '';
    await withPair(address, echo, async (client, server) => {
      if (where === 'unix') path = server.address.slice('unix:'.length);
      else assert.match(server.address, /^127\.0\.0\.1:[1-9]\d*$/);
      const tensors = [...everyDtype(3, 7), new Float32Array(randomBytes(4 * 300_000).buffer)]; // 1.2 MB: corked, many chunks
      const reply = await client.request('echo', { text: 'ñ' }, tensors);
      assert.deepEqual(reply.meta, { text: 'ñ' });
      assertSameTensors(reply.tensors, tensors);
      assert.equal(server.peers.length, 1);
    });
    if (where === 'unix') assert.equal(existsSync(path), false, 'server.close removes the socket file');
  });
}

test('100 pipelined requests answered out of order are each matched to their caller', { timeout: 10000 }, async () => {
  const rng = createRng(5);
  const slow: Handler = async (m) => {
    await new Promise((r) => setTimeout(r, Math.floor(rng.next() * 20)));
    return { method: 'done', meta: m.meta, tensors: [new Int32Array([(m.meta as { i: number }).i * 3])] };
  };
  await withPair('127.0.0.1:0', slow, async (client) => {
    const order: number[] = [];
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => client.request('work', { i }).then((r) => {
      order.push(i);
      return r;
    })));
    replies.forEach((r, i) => {
      assert.deepEqual(r.meta, { i });
      assert.equal(r.tensors[0]![0], i * 3);
    });
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b), 'replies did come back out of order');
    assert.equal(client.inFlight, 0);
  });
});

test('either side requests and notifies; a throwing handler becomes a RemoteError', { timeout: 5000 }, async () => {
  const notes: Message[] = [];
  const handler: Handler = (m) => {
    if (m.method === 'note') return void notes.push(m);
    if (m.method === 'bad') throw new HetisError('bad_input', 'prompt is empty');
    if (m.method === 'crash') throw new TypeError('x is undefined');
    return echo(m, undefined as never);
  };
  const server = await listen(':0', { handler, onPeer: (p) => void p.request('hi', 'from server').then((r) => notes.push(r)) });
  let client: Peer | undefined;
  try {
    client = await connect(server.address, { handler: echo });
    await assert.rejects(client.request('bad', null), (e: unknown) =>
      e instanceof RemoteError && e.code === 'bad_input' && e.message === 'prompt is empty' && e.method === 'bad' && !String(e.stack).includes('handler'));
    await assert.rejects(client.request('crash', null), (e: unknown) => e instanceof RemoteError && e.code === 'internal' && e.message === 'x is undefined');
    await client.notify('note', { k: 1 }, [new Uint8Array([9])]);
    const r = await client.request('ping-me', 5); // after the note on the same socket
    assert.equal(r.meta, 5);
    assert.deepEqual(notes.map((n) => [n.method, n.meta]).sort(), [['hi', 'from server'], ['note', { k: 1 }]]);
  } finally {
    await client?.close();
    await server.close();
  }
});

test('the cluster token: right one accepted, wrong and missing ones rejected clearly', { timeout: 5000 }, async () => {
  const server = await listen('127.0.0.1:0', { handler: echo, token: 's3cret' });
  try {
    const ok = await connect(server.address, { token: 's3cret', name: 'engine' });
    assert.equal((await ok.request('x', 1)).meta, 1);
    await ok.close();
    await assert.rejects(connect(server.address, { token: 'guess' }), (e: unknown) =>
      e instanceof HetisError && e.message === `worker at ${server.address} rejected the cluster token`);
    await assert.rejects(connect(server.address), /worker at .* requires a cluster token and none was given/);
  } finally {
    await server.close();
  }
  const open = await listen('127.0.0.1:0', { handler: echo }); // no token on either side: anyone
  try {
    const p = await connect(open.address);
    await p.close();
  } finally {
    await open.close();
  }
});

test('connections beyond maxConnections are refused with a message', { timeout: 5000 }, async () => {
  const server = await listen('127.0.0.1:0', { handler: echo, maxConnections: 1 });
  try {
    const first = await connect(server.address);
    await assert.rejects(connect(server.address), /refuses new connections: it already has 1 connections/);
    await first.close();
  } finally {
    await server.close();
  }
});

const CHILD = `
const { listen } = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'src/runtime/transport/index.ts')).href)});
const server = await listen('127.0.0.1:0', { handler: (m) => m.method === 'hang' ? new Promise(() => {}) : m, timeoutMs: 60000 });
process.stdout.write(server.address + '\\n');
`;

test('a killed worker fails pending requests at once with a TransportError, and close fires', { timeout: 15000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let peer: Peer | undefined;
  try {
    const address = (await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next()).value as string;
    peer = await connect(address, { timeoutMs: 60_000 }); // a heartbeat timeout cannot be what fails it
    assert.equal((await peer.request('alive', 1)).meta, 1);
    const closed = new Promise<TransportError | undefined>((resolve) => peer!.onClose(resolve));
    const pending = [peer.request('hang', 1), peer.request('hang', 2)];
    process.kill(child.pid!, 'SIGKILL');
    for (const p of pending) await assert.rejects(p, (e: unknown) => e instanceof TransportError && e.message.includes(address));
    const err = await closed;
    assert.ok(err instanceof TransportError);
    assert.equal(peer.closed, true);
    await assert.rejects(peer.request('after', null), TransportError);
  } finally {
    await peer?.close();
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }
});

/** A raw TCP server that runs `onSocket` on each connection; all its sockets die on close. */
async function rawServer(onSocket: (s: Socket) => void): Promise<{ address: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, close };
}

const handshakeFrame = (kind: Frame['kind'], meta: Frame['meta']): Buffer => encodeFrameBytes(frame({ kind, id: 0, method: 'handshake', meta }));

/** Completes the listener's side of the handshake, then says nothing ever again. */
function silentWorker(s: Socket): void {
  const dec = new FrameDecoder();
  s.write(handshakeFrame(FrameKind.challenge, { nonce: '00'.repeat(32), auth: false }));
  s.on('data', (c) => {
    for (const f of dec.push(c)) if (f.kind === FrameKind.hello) s.write(handshakeFrame(FrameKind.welcome, null));
  });
}

test('a worker that falls silent: pending requests fail with "no heartbeat" after timeoutMs', { timeout: 5000 }, async () => {
  const raw = await rawServer(silentWorker);
  let peer: Peer | undefined;
  try {
    peer = await connect(raw.address, { heartbeatMs: 50, timeoutMs: 300 });
    const closed = new Promise<TransportError | undefined>((resolve) => peer!.onClose(resolve));
    const expected = `no heartbeat from ${raw.address} for 0.3 s`;
    await assert.rejects(peer.request('x', null), (e: unknown) => e instanceof TransportError && e.message === expected);
    assert.equal((await closed)?.message, expected);
  } finally {
    await peer?.close();
    await raw.close();
  }
});

test('heartbeats keep an idle connection open past timeoutMs', { timeout: 5000 }, async () => {
  const server = await listen('127.0.0.1:0', { handler: echo, heartbeatMs: 40, timeoutMs: 400 });
  let peer: Peer | undefined;
  try {
    peer = await connect(server.address, { heartbeatMs: 40, timeoutMs: 400 });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await peer.request('still', 'here')).meta, 'here');
  } finally {
    await peer?.close();
    await server.close();
  }
});

test('handshake: silence, another version and a non-hetis server are clear connect errors', { timeout: 5000 }, async () => {
  const mute = await rawServer(() => {});
  const v2 = await rawServer((s) => {
    const b = handshakeFrame(FrameKind.challenge, { nonce: '00', auth: false });
    b.writeUInt16LE(2, 4);
    s.write(b);
  });
  const http = await rawServer((s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
  try {
    await assert.rejects(connect(mute.address, { connectTimeoutMs: 200 }), (e: unknown) =>
      e instanceof TransportError && e.message === `worker at ${mute.address} did not complete the connection within 200 ms`);
    await assert.rejects(connect(v2.address), (e: unknown) =>
      e instanceof HetisError && e.code === 'unsupported' && e.message === `worker at ${v2.address} speaks hetis protocol v2; this hetis speaks v1`);
    await assert.rejects(connect(http.address), /worker at .* does not speak the hetis protocol \(expected magic 'HTS1', got 'HTTP'\)/);
    await assert.rejects(connect('127.0.0.1:0'), /port 0 can be listened on/);
  } finally {
    await Promise.all([mute.close(), v2.close(), http.close()]);
  }
});

/** Opens a raw socket to `address` and collects the frames it receives until it closes. */
function rawClient(address: string, send?: Buffer): Promise<{ frames: Frame[]; socket: Socket }> {
  const { port } = parseAddress(address) as { port: number };
  const socket = netConnect(port, '127.0.0.1');
  const dec = new FrameDecoder();
  const frames: Frame[] = [];
  socket.on('data', (c) => frames.push(...dec.push(c)));
  if (send !== undefined) socket.write(send);
  return new Promise((resolve) => socket.on('close', () => resolve({ frames, socket })));
}

test('the listener drops a client that never says hello, and tells a v2 or oversized one why', { timeout: 5000 }, async () => {
  const server = await listen('127.0.0.1:0', { handler: echo, handshakeTimeoutMs: 200 });
  try {
    const mute = await rawClient(server.address);
    assert.deepEqual(mute.frames.map((f) => f.kind), [FrameKind.challenge]);
    const hello = handshakeFrame(FrameKind.hello, { version: 2, proof: null, name: null });
    hello.writeUInt16LE(2, 4);
    const v2 = await rawClient(server.address, hello);
    const err = v2.frames.find((f) => f.kind === FrameKind.error);
    assert.match(String((err?.meta as { message: string }).message), /client at 127\.0\.0\.1:\d+ speaks hetis protocol v2; this hetis speaks v1/);
    const fat = await rawClient(server.address, encodeFrameBytes(frame({ kind: FrameKind.hello, id: 0, tensors: [new Uint8Array(100_000)] })));
    const tooBig = fat.frames.find((f) => f.kind === FrameKind.error);
    assert.match(String((tooBig?.meta as { message: string }).message), /exceeds the limit of 65536 bytes/, 'no big frames before the token is checked');
    assert.equal(server.peers.length, 0);
  } finally {
    await server.close();
  }
});

test('close(): pending requests reject, this side hears undefined, the other side an error', { timeout: 5000 }, async () => {
  let serverSide: Peer | undefined;
  const server = await listen('127.0.0.1:0', { handler: () => new Promise(() => {}), onPeer: (p) => { serverSide = p; } });
  try {
    const client = await connect(server.address);
    await assert.rejects(serverSide!.request('to-client', null), (e: unknown) => e instanceof RemoteError && e.code === 'unsupported' && /no handler/.test(e.message));
    await client.request('warm', null, [], { timeoutMs: 50 }).catch((e: unknown) => assert.match(String(e), /got no reply within 0\.05 s/));
    const heard = new Promise<TransportError | undefined>((resolve) => serverSide!.onClose(resolve));
    const mine = new Promise<TransportError | undefined>((resolve) => client.onClose(resolve));
    const pending = assert.rejects(client.request('hang', null), /closed by this side/);
    await client.close();
    await pending;
    assert.equal(await mine, undefined);
    assert.match(String((await heard)?.message), /client at 127\.0\.0\.1:\d+ closed the connection/);
    assert.throws(() => client.notify('late', null), TransportError);
  } finally {
    await server.close();
  }
});
