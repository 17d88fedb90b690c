// Owns: one established hetis connection, the same on both ends: pipelined requests matched by id,
// notifications, answering the other side's requests with a handler, heartbeats, and rejecting
// every pending request at once when the connection breaks. Must not: handshake, parse addresses or
// listen (handshake.ts, client.ts, server.ts do), or copy tensors on send.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HetisError } from '../../util/errors.js';
import { RemoteError, TransportError, knownCode, wireError } from './errors.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameKind, encodeFrame, type Frame, type FrameDecoder, type Json, type Message, type Tensor } from './frame.js';

/**
 * Answers the other side's requests (the returned message is the reply; nothing returned replies
 * `{method, meta: null, tensors: []}`) and receives its notifications (the result is ignored).
 * A throw (or rejection) reaches the requester as a RemoteError with its code and message.
 * Must not block the event loop longer than the heartbeat timeout.
 */
export type Handler = (msg: Message, peer: Peer) => Message | void | Promise<Message | void>;

export interface PeerOptions {
  /** Handles the other side's requests and notifications; without one, requests get an error. */
  handler?: Handler;
  /** A ping is sent after this long without sending anything, ms (default 1000). */
  heartbeatMs?: number;
  /** The connection closes when nothing was received for this long, ms (default 5000). */
  timeoutMs?: number;
  /** Largest frame sent or received, bytes (default 1 GiB). */
  maxFrameBytes?: number;
  /** A notification handler threw (there is no one to answer). Default: process.emitWarning. */
  onNotifyError?: (err: unknown, msg: Message) => void;
}

/** What a finished handshake hands over. @internal: peers come from connect() and listen(). */
export interface Established {
  /** Paused; the peer resumes it. */
  socket: Socket;
  /** The handshake's decoder, with any bytes after the last handshake frame. */
  decoder: FrameDecoder;
  /** Frames decoded after the handshake's last frame, not yet handled. */
  frames: Frame[];
  /** How errors name the other side: 'worker at 10.0.0.7:7070', 'client at 10.0.0.8:51234'. */
  who: string;
  /** Its address, e.g. '10.0.0.7:7070'. */
  remote: string;
  /** The name the client gave in its hello, if any. */
  remoteName: string | undefined;
}

export interface RequestOptions {
  /** Reject with a TransportError when no reply came within this long, ms (default: never). */
  timeoutMs?: number;
}

type CloseListener = (err: TransportError | undefined) => void;

interface Pending {
  method: string;
  resolve: (msg: Message) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Frames up to this size, bytes, are written as one buffer; larger ones as header + tensor views. */
const JOIN_BYTES = 16 * 1024;

function seconds(ms: number): string {
  return `${+(ms / 1000).toFixed(3)} s`;
}

/** One end of an established connection. Either end may request, notify and handle. */
export class Peer {
  /** The other side's address, e.g. '10.0.0.7:7070' or 'unix:/tmp/w.sock'. */
  readonly remote: string;
  /** The name the client gave in its hello (on the listening side), if any. */
  readonly remoteName: string | undefined;
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly who: string;
  private readonly handler: Handler | undefined;
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly onNotifyError: (err: unknown, msg: Message) => void;
  private readonly pending = new Map<number, Pending>();
  private readonly closeListeners: CloseListener[] = [];
  private readonly heartbeat: NodeJS.Timeout;
  private readonly socketClosed: Promise<void>;
  private nextId = 1;
  /** True from the first send in a turn until the microtask that uncorks. */
  private corked = false;
  private lastSent = performance.now();
  private lastReceived = performance.now();
  /** Set once closed: undefined reason when this side closed it, else the failure. */
  private ended: { reason: TransportError | undefined; rejectWith: TransportError } | undefined;

  /** @internal Use connect() or listen(). */
  constructor(est: Established, opts: PeerOptions = {}) {
    this.socket = est.socket;
    this.decoder = est.decoder;
    this.who = est.who;
    this.remote = est.remote;
    this.remoteName = est.remoteName;
    this.handler = opts.handler;
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.onNotifyError = opts.onNotifyError ?? ((err, msg) => process.emitWarning(`hetis: notification '${msg.method}' from ${this.remote} failed: ${wireError(err).message}`));
    this.socketClosed = this.socket.closed ? Promise.resolve() : new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.listen();
    const tick = Math.max(5, Math.min(this.heartbeatMs, this.timeoutMs) / 4);
    this.heartbeat = setInterval(() => this.tick(), tick).unref();
    setImmediate(() => this.start(est.frames));
  }

  /** True once closed by either side or broken; requests then reject at once. */
  get closed(): boolean {
    return this.ended !== undefined;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends a request and resolves with the reply. Many may be in flight; replies may come in any
   * order. Rejects with RemoteError when the remote handler throws, TransportError when the
   * connection breaks or opts.timeoutMs passes, HetisError('bad_input') when the frame cannot be
   * encoded. Tensors are written without copying: do not change them until this settles.
   */
  request(method: string, meta: Json, tensors: Tensor[] = [], opts: RequestOptions = {}): Promise<Message> {
    if (this.ended !== undefined) return Promise.reject(this.ended.rejectWith);
    const id = this.takeId();
    return new Promise<Message>((resolve, reject) => {
      const call: Pending = { method, resolve, reject, timer: undefined };
      this.pending.set(id, call);
      if (opts.timeoutMs !== undefined) call.timer = setTimeout(() => this.expire(id, opts.timeoutMs!), opts.timeoutMs);
      try {
        this.send({ kind: FrameKind.request, flags: 0, id, method, meta, tensors });
      } catch (err) {
        this.settle(id);
        reject(err as Error);
      }
    });
  }

  /**
   * Sends a one-way message (no reply; a handler error stays on the other side). Throws
   * TransportError when closed, HetisError('bad_input') when the frame cannot be encoded. Resolves
   * once the socket no longer holds the tensors (written, or the connection gone), so they may be
   * changed; it never rejects.
   */
  notify(method: string, meta: Json, tensors: Tensor[] = []): Promise<void> {
    if (this.ended !== undefined) throw this.ended.rejectWith;
    let flushed!: () => void;
    const done = new Promise<void>((resolve) => (flushed = resolve));
    this.send({ kind: FrameKind.notify, flags: 0, id: 0, method, meta, tensors }, () => flushed());
    return done;
  }

  /**
   * Calls `listener` once when the connection ends: with undefined when this side closed it, with
   * the TransportError otherwise (peer gone, heartbeat timeout, protocol error). Called at once
   * (next tick) if already closed.
   */
  onClose(listener: CloseListener): void {
    if (this.ended === undefined) this.closeListeners.push(listener);
    else process.nextTick(listener, this.ended.reason);
  }

  /** Closes cleanly: pending requests reject, queued writes flush, then the socket ends. */
  close(): Promise<void> {
    this.end(undefined, new TransportError(`connection to ${this.remote} was closed by this side`), false);
    return this.socketClosed;
  }

  private listen(): void {
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('end', () => this.fail(new TransportError(`${this.who} closed the connection`)));
    this.socket.on('error', (err) => this.fail(new TransportError(`connection to ${this.remote} broke: ${err.message}`, { cause: err })));
    this.socket.on('close', () => this.fail(new TransportError(`connection to ${this.remote} closed`)));
  }

  /** Handles what came with the handshake, then starts reading. */
  private start(frames: Frame[]): void {
    for (const f of frames) this.dispatch(f);
    if (this.socket.destroyed) this.fail(new TransportError(`connection to ${this.remote} closed`)); // during the hand-over
    if (this.ended === undefined) this.socket.resume();
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1; // 0 is the connection's own id
    return id;
  }

  /**
   * Writes one frame: small ones joined into one buffer, large ones as header + tensor views. The
   * socket stays corked until the current microtasks have run, so the frames sent in one turn (a
   * burst of requests, the replies to one received chunk) leave in one writev.
   */
  private send(frame: Frame, written?: () => void): void {
    const parts = encodeFrame(frame, this.maxFrameBytes, JOIN_BYTES);
    this.lastSent = performance.now();
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      queueMicrotask(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    parts.forEach((p, i) => this.socket.write(p, i === parts.length - 1 ? written : undefined));
  }

  private receive(chunk: Buffer): void {
    this.lastReceived = performance.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.refuse(err);
      return;
    }
    for (const f of frames) this.dispatch(f);
  }

  private dispatch(f: Frame): void {
    if (this.ended !== undefined) return;
    switch (f.kind) {
      case FrameKind.ping:
        return;
      case FrameKind.request:
        void this.answer(f);
        return;
      case FrameKind.notify:
        void this.deliver(f);
        return;
      case FrameKind.response:
        this.settle(f.id)?.resolve({ method: f.method, meta: f.meta, tensors: f.tensors });
        return;
      case FrameKind.error:
        this.onError(f);
        return;
      default:
        this.refuse(new TransportError(`${this.who} sent a handshake frame (kind ${f.kind}) after the handshake`));
    }
  }

  private onError(f: Frame): void {
    const { code, message } = (f.meta ?? {}) as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : 'unknown error';
    if (f.id === 0) {
      this.fail(new TransportError(`${this.who} ended the connection: ${text}`));
      return;
    }
    const call = this.settle(f.id);
    call?.reject(new RemoteError(knownCode(code), text, this.remote, call.method));
  }

  /** Runs the handler for a request and sends its reply or its error. */
  private async answer(f: Frame): Promise<void> {
    const msg: Message = { method: f.method, meta: f.meta, tensors: f.tensors };
    try {
      if (this.handler === undefined) throw new HetisError('unsupported', `this side takes no requests (no handler); '${f.method}' refused`);
      const out = await this.handler(msg, this);
      if (this.ended !== undefined) return;
      const reply = out ?? { method: f.method, meta: null, tensors: [] };
      this.send({ kind: FrameKind.response, flags: 0, id: f.id, method: reply.method, meta: reply.meta, tensors: reply.tensors ?? [] });
    } catch (err) {
      if (this.ended !== undefined) return;
      this.send({ kind: FrameKind.error, flags: 0, id: f.id, method: 'error', meta: wireError(err), tensors: [] });
    }
  }

  private async deliver(f: Frame): Promise<void> {
    const msg: Message = { method: f.method, meta: f.meta, tensors: f.tensors };
    try {
      await this.handler?.(msg, this);
    } catch (err) {
      this.onNotifyError(err, msg);
    }
  }

  /** Removes a pending request and its timer; undefined when it is unknown (late or expired). */
  private settle(id: number): Pending | undefined {
    const call = this.pending.get(id);
    if (call === undefined) return undefined;
    this.pending.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    return call;
  }

  private expire(id: number, ms: number): void {
    const call = this.settle(id);
    call?.reject(new TransportError(`request '${call.method}' to ${this.remote} got no reply within ${seconds(ms)}`));
  }

  /** Pings when idle; closes when nothing came for timeoutMs, after letting waiting input in. */
  private tick(): void {
    const now = performance.now();
    if (now - this.lastSent >= this.heartbeatMs) this.send({ kind: FrameKind.ping, flags: 0, id: 0, method: 'ping', meta: null, tensors: [] });
    if (now - this.lastReceived <= this.timeoutMs) return;
    // Timers run before I/O in the event loop: after a long block of this process, bytes may be
    // waiting. Look again after the I/O phase.
    setImmediate(() => {
      if (performance.now() - this.lastReceived > this.timeoutMs) {
        this.fail(new TransportError(`no heartbeat from ${this.remote} for ${seconds(this.timeoutMs)}`));
      }
    });
  }

  /** A protocol error from the other side: tell it why (best effort), then fail. */
  private refuse(err: unknown): void {
    if (this.ended !== undefined) return;
    const wire = wireError(err);
    try {
      this.send({ kind: FrameKind.error, flags: 0, id: 0, method: 'error', meta: wire, tensors: [] });
    } catch {
      // the socket is going away anyway
    }
    this.fail(new TransportError(`closing the connection to ${this.remote}: ${wire.message}`, { cause: err }), true);
  }

  private fail(err: TransportError, flush = false): void {
    this.end(err, err, flush);
  }

  /**
   * Ends once: rejects every pending request with `rejectWith`, tells the close listeners `reason`.
   * The socket is flushed first when this side closes or `flush` (an error frame is on its way).
   */
  private end(reason: TransportError | undefined, rejectWith: TransportError, flush: boolean): void {
    if (this.ended !== undefined) return;
    this.ended = { reason, rejectWith };
    clearInterval(this.heartbeat);
    for (const id of [...this.pending.keys()]) this.settle(id)!.reject(rejectWith);
    if (reason === undefined || flush) this.endGently();
    else this.socket.destroy();
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  /** Flushes, sends FIN, and destroys after 1 s if the other side does not close its end. */
  private endGently(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
