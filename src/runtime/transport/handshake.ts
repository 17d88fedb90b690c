// Owns: the handshake that opens every connection. The listener sends a challenge (a random nonce);
// the client answers hello {version, proof = HMAC-SHA256(token, nonce) hex, name}; the listener
// answers welcome, or an error frame and closes. Must not: run after the handshake, or keep a
// socket it failed on open.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { HetisError } from '../../util/errors.js';
import { TransportError, knownCode, wireError } from './errors.js';
import { FrameDecoder, FrameKind, PROTOCOL_VERSION, encodeFrameBytes, type Frame, type Json } from './frame.js';
import type { Established } from './peer.js';

/** Why a listener refused a client; the client turns each into its own message. */
export type RefusalReason = 'token_missing' | 'token_wrong' | 'full' | 'protocol';

const NONCE_BYTES = 32;
/** Largest frame a client may send before it is authenticated, bytes: a hello is ~200. */
const HELLO_MAX_BYTES = 64 * 1024;

/** Hex HMAC-SHA256 of the nonce bytes under the cluster token. */
function proofFor(token: string, nonceHex: string): string {
  return createHmac('sha256', token).update(Buffer.from(nonceHex, 'hex')).digest('hex');
}

function frame(kind: FrameKind, meta: Json): Buffer {
  return encodeFrameBytes({ kind, flags: 0, id: 0, method: kind === FrameKind.error ? 'error' : 'handshake', meta, tensors: [] });
}

/** Writes an error frame with a reason, then ends the socket (destroyed after 1 s at most). */
export function refuse(socket: Socket, err: HetisError, reason: RefusalReason): void {
  if (socket.destroyed) return;
  socket.end(frame(FrameKind.error, { ...wireError(err), reason }));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Reads whole frames off a socket until released; the socket is then paused for the peer. */
class FrameReader {
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.frames.push(...this.decoder.push(chunk));
    } catch (err) {
      this.failure ??= err as Error;
    }
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= err instanceof HetisError ? err : new TransportError(`connection to ${this.who} broke during the handshake: ${err.message}`, { cause: err });
    this.wake();
  };
  private readonly onClose = (): void => {
    this.failure ??= new TransportError(`${this.who} closed the connection during the handshake`);
    this.wake();
  };

  constructor(private readonly socket: Socket, readonly decoder: FrameDecoder, private readonly who: string) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** The next frame; rejects on a protocol error or when the socket breaks or closes. */
  next(): Promise<Frame> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  /** Stops reading (socket paused) and returns frames decoded but not yet read. */
  release(): Frame[] {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    return this.frames.splice(0);
  }

  private wake(): void {
    const w = this.waiter;
    if (w === undefined) return;
    const f = this.frames.shift();
    if (f !== undefined) {
      this.waiter = undefined;
      w.resolve(f);
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }
}

/** Rejects with `timeout()` and destroys the socket when `work` has not settled within ms. */
async function within<T>(socket: Socket, ms: number, timeout: () => Error, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      socket.destroy();
      reject(timeout());
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function tcpLabel(socket: Socket): string {
  const host = socket.remoteAddress ?? 'unknown';
  return host.includes(':') ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`;
}

export interface AcceptOptions {
  /** Clients must prove they hold this token; undefined accepts any client. */
  token: string | undefined;
  /** The listener's own address, used to name unix-socket clients. */
  local: string;
  /** Whole handshake deadline, ms. */
  timeoutMs: number;
  /** Largest frame once the client is welcomed, bytes (before that: 64 KiB). */
  maxFrameBytes: number;
}

/**
 * Listener side: challenge, check the hello, welcome. Resolves with the established connection, or
 * rejects after sending the client an error frame (bad token, other version) and closing, or after
 * destroying the socket (timeout, connection lost).
 */
export async function acceptHandshake(socket: Socket, o: AcceptOptions): Promise<Established> {
  const remote = socket.remoteAddress === undefined ? o.local : tcpLabel(socket);
  const who = `client at ${remote}`;
  const reader = new FrameReader(socket, new FrameDecoder({ maxFrameBytes: Math.min(o.maxFrameBytes, HELLO_MAX_BYTES), who }), who);
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  const talk = async (): Promise<string | undefined> => {
    socket.write(frame(FrameKind.challenge, { nonce, auth: o.token !== undefined }));
    return checkHello(await reader.next(), o.token, nonce, who);
  };
  try {
    const remoteName = await within(socket, o.timeoutMs, () => new TransportError(`${who} did not finish the handshake within ${o.timeoutMs} ms`), talk());
    socket.write(frame(FrameKind.welcome, { version: PROTOCOL_VERSION }));
    reader.decoder.maxFrameBytes = o.maxFrameBytes; // the client sends nothing more before welcome
    return { socket, decoder: reader.decoder, frames: reader.release(), who, remote, remoteName };
  } catch (err) {
    reader.release();
    if (err instanceof HetisError && !(err instanceof TransportError)) refuse(socket, err, reasonOf(err));
    else socket.destroy();
    throw err;
  }
}

class Refusal extends HetisError {
  constructor(message: string, readonly reason: RefusalReason) {
    super('bad_input', message);
  }
}

function reasonOf(err: HetisError): RefusalReason {
  return err instanceof Refusal ? err.reason : 'protocol';
}

/** Checks a hello frame; returns the client's name. Throws Refusal for a missing or wrong proof. */
function checkHello(f: Frame, token: string | undefined, nonce: string, who: string): string | undefined {
  if (f.kind !== FrameKind.hello) throw new HetisError('bad_input', `${who} sent frame kind ${f.kind} where a hello belongs`);
  const hello = (f.meta ?? {}) as { version?: unknown; proof?: unknown; name?: unknown };
  if (hello.version !== PROTOCOL_VERSION) {
    throw new HetisError('unsupported', `${who} speaks hetis protocol v${String(hello.version)}; this hetis speaks v${PROTOCOL_VERSION}`);
  }
  if (token !== undefined) {
    if (typeof hello.proof !== 'string') throw new Refusal(`${who} gave no cluster token; this worker requires one`, 'token_missing');
    const expected = Buffer.from(proofFor(token, nonce), 'hex');
    const got = Buffer.from(hello.proof, 'hex');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new Refusal(`${who} gave the wrong cluster token`, 'token_wrong');
  }
  return typeof hello.name === 'string' ? hello.name : undefined;
}

export interface OfferOptions {
  /** The listener's address as the user wrote it, for messages and Peer.remote. */
  remote: string;
  token: string | undefined;
  /** This side's name, sent in the hello. */
  name: string | undefined;
  /** Largest frame accepted, bytes. */
  maxFrameBytes: number;
}

/**
 * Client side: answer the challenge, wait for welcome. Rejects with a HetisError that names the
 * worker: wrong or missing token, other protocol version, refused (full), not a hetis worker.
 * The caller owns the socket's deadline and destroys it on failure.
 */
export async function offerHandshake(socket: Socket, o: OfferOptions): Promise<Established> {
  const who = `worker at ${o.remote}`;
  const reader = new FrameReader(socket, new FrameDecoder({ maxFrameBytes: o.maxFrameBytes, who }), who);
  try {
    const challenge = expect(await reader.next(), FrameKind.challenge, who, o.token);
    const nonce = (challenge.meta as { nonce?: unknown } | null)?.nonce;
    if (typeof nonce !== 'string') throw new HetisError('bad_input', `${who} sent a challenge without a nonce`);
    const proof = o.token === undefined ? null : proofFor(o.token, nonce);
    socket.write(frame(FrameKind.hello, { version: PROTOCOL_VERSION, proof, name: o.name ?? null }));
    expect(await reader.next(), FrameKind.welcome, who, o.token);
    return { socket, decoder: reader.decoder, frames: reader.release(), who, remote: o.remote, remoteName: undefined };
  } catch (err) {
    reader.release();
    throw err;
  }
}

/** Returns f when it is of `kind`; turns an error frame into the client's message for its reason. */
function expect(f: Frame, kind: FrameKind, who: string, token: string | undefined): Frame {
  if (f.kind === kind) return f;
  if (f.kind !== FrameKind.error) throw new HetisError('bad_input', `${who} sent frame kind ${f.kind} during the handshake`);
  const { code, message, reason } = (f.meta ?? {}) as { code?: unknown; message?: unknown; reason?: unknown };
  const text = typeof message === 'string' ? message : 'no reason given';
  switch (reason) {
    case 'token_wrong':
      return fail('bad_input', `${who} rejected the cluster token`);
    case 'token_missing':
      return fail('bad_input', `${who} requires a cluster token and ${token === undefined ? 'none was given' : 'got none'}`);
    case 'full':
      return fail('unsupported', `${who} refuses new connections: ${text}`);
    default:
      return fail(knownCode(code), `${who} refused the connection: ${text}`);
  }
}

function fail(code: ReturnType<typeof knownCode>, message: string): never {
  throw new HetisError(code, message);
}
