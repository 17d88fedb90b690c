// Owns: listening for connections (TCP or unix socket), running the listener's handshake on each,
// the connection limit, and closing everything it accepted. Must not: handle messages itself (the
// peers' handler does) or leave its unix socket file behind.

import { existsSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { HetisError } from '../../util/errors.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import { acceptHandshake, refuse } from './handshake.js';
import { Peer, type Handler, type PeerOptions } from './peer.js';

export interface ListenOptions extends PeerOptions {
  /** Handles every peer's requests and notifications. */
  handler: Handler;
  /** Clients must prove they hold this token; without one any client is accepted. */
  token?: string;
  /** Connections (handshaking or established) beyond this are refused with a message (default: no limit). */
  maxConnections?: number;
  /** A client that has not finished the handshake within this long is dropped, ms (default 5000). */
  handshakeTimeoutMs?: number;
  /** Called with each peer once its handshake succeeded. */
  onPeer?: (peer: Peer) => void;
}

export interface TransportServer {
  /** Where it listens, with the real port when port 0 was asked: '127.0.0.1:40123', 'unix:/tmp/w.sock'. */
  readonly address: string;
  /** Peers whose handshake succeeded and that are still open. */
  readonly peers: readonly Peer[];
  /** Stops accepting, closes every peer and pending socket, removes a unix socket file. */
  close(): Promise<void>;
}

class Listener implements TransportServer {
  readonly address: string;
  private readonly sockets = new Set<Socket>();
  private readonly live = new Set<Peer>();
  private closing: Promise<void> | undefined;

  constructor(private readonly server: Server, private readonly addr: Address, private readonly opts: ListenOptions) {
    this.address = addr.kind === 'unix' ? formatAddress(addr) : boundAddress(server);
    server.on('connection', (socket) => this.accept(socket));
  }

  get peers(): readonly Peer[] {
    return [...this.live];
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.live].map((p) => p.close()));
    for (const s of this.sockets) s.destroy();
    await stopped;
    if (this.addr.kind === 'unix') rmSync(this.addr.path, { force: true });
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {}); // reported by the handshake or the peer; never unhandled
    socket.setNoDelay(true);
    const max = this.opts.maxConnections;
    if (this.closing !== undefined || (max !== undefined && this.sockets.size >= max)) {
      const why = this.closing !== undefined ? 'it is shutting down' : `it already has ${max} connections (maxConnections)`;
      refuse(socket, new HetisError('unsupported', why), 'full');
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    void this.establish(socket);
  }

  private async establish(socket: Socket): Promise<void> {
    const o = this.opts;
    let peer: Peer;
    try {
      const est = await acceptHandshake(socket, {
        token: o.token, local: this.address, timeoutMs: o.handshakeTimeoutMs ?? 5000, maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      });
      peer = new Peer(est, o);
    } catch {
      return; // the client was told why (or is gone); the listener carries on
    }
    this.live.add(peer);
    peer.onClose(() => this.live.delete(peer));
    if (this.closing !== undefined) void peer.close();
    else o.onPeer?.(peer);
  }
}

function boundAddress(server: Server): string {
  const info = server.address() as AddressInfo;
  return formatAddress({ kind: 'tcp', host: info.address, port: info.port });
}

function bind(server: Server, addr: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (addr.kind === 'unix') server.listen(addr.path, done);
    else server.listen(addr.port, addr.host, done);
  });
}

/** True when something accepts connections on the unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = netConnect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function listenError(err: NodeJS.ErrnoException, address: string): HetisError {
  if (err.code === 'EADDRINUSE') return new HetisError('bad_input', `cannot listen on ${address}: another process is listening there`, { cause: err });
  if (err.code === 'EACCES') return new HetisError('bad_input', `cannot listen on ${address}: permission denied`, { cause: err });
  if (err.code === 'EADDRNOTAVAIL') return new HetisError('bad_input', `cannot listen on ${address}: no such local address`, { cause: err });
  return new HetisError('bad_input', `cannot listen on ${address}: ${err.message}`, { cause: err });
}

/**
 * Listens at `address` (port 0 picks a free port; see TransportServer.address). A unix socket file
 * left by a dead process is replaced; one in use is an error. Rejects with HetisError('bad_input')
 * for a bad or busy address.
 */
export async function listen(address: string, opts: ListenOptions): Promise<TransportServer> {
  const addr = parseAddress(address);
  const server = createServer({ noDelay: true });
  try {
    await bind(server, addr);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (addr.kind !== 'unix' || e.code !== 'EADDRINUSE' || !existsSync(addr.path) || (await socketAnswers(addr.path))) throw listenError(e, address);
    rmSync(addr.path, { force: true }); // stale: its process died without removing it
    await bind(server, addr).catch((again: NodeJS.ErrnoException) => {
      throw listenError(again, address);
    });
  }
  return new Listener(server, addr, opts);
}
