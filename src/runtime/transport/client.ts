// Owns: opening a connection to a listening worker (TCP or unix socket), with a deadline over the
// connect and the handshake. Must not: retry, or leave a socket open when it fails.

import { connect as netConnect, type Socket } from 'node:net';
import { HetisError } from '../../util/errors.js';
import { formatAddress, parseAddress } from './address.js';
import { TransportError } from './errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import { offerHandshake } from './handshake.js';
import { Peer, type PeerOptions } from './peer.js';

export interface ConnectOptions extends PeerOptions {
  /** Shared cluster secret; required when the worker has one. */
  token?: string;
  /** This side's name, shown on the worker side as Peer.remoteName. */
  name?: string;
  /** Deadline for the TCP connect plus the handshake, ms (default 5000). */
  connectTimeoutMs?: number;
}

function connectError(err: NodeJS.ErrnoException, remote: string): TransportError {
  switch (err.code) {
    case 'ECONNREFUSED':
      return new TransportError(`no worker listening at ${remote} (connection refused)`, { cause: err });
    case 'ENOENT':
      return new TransportError(`no worker listening at ${remote} (no such socket file)`, { cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new TransportError(`cannot resolve the host of ${remote}`, { cause: err });
    default:
      return new TransportError(`cannot connect to worker at ${remote}: ${err.message}`, { cause: err });
  }
}

/** Resolves when the socket is connected; rejects with a TransportError naming the address. */
function opened(socket: Socket, remote: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.off('connect', onConnect);
      reject(err instanceof HetisError ? err : connectError(err, remote));
    };
    const onConnect = (): void => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/**
 * Connects to a worker at `address` ('HOST:PORT', ':PORT', 'PORT', '[::1]:PORT',
 * 'unix:/path.sock'), proves the token and returns the established peer. Rejects with
 * HetisError('bad_input') for a bad address or a rejected or missing token, 'unsupported' for another
 * protocol version, TransportError when nothing answers within connectTimeoutMs or it is refused.
 */
export async function connect(address: string, opts: ConnectOptions = {}): Promise<Peer> {
  const addr = parseAddress(address);
  if (addr.kind === 'tcp' && addr.port === 0) throw new HetisError('bad_input', `address '${address}': port 0 can be listened on, not connected to`);
  const remote = formatAddress(addr);
  const ms = opts.connectTimeoutMs ?? 5000;
  const socket = addr.kind === 'tcp' ? netConnect({ host: addr.host, port: addr.port, noDelay: true }) : netConnect({ path: addr.path });
  socket.on('error', () => {}); // errors are reported by whoever listens at the time; never unhandled
  const timer = setTimeout(() => socket.destroy(new TransportError(`worker at ${remote} did not complete the connection within ${ms} ms`)), ms);
  try {
    await opened(socket, remote);
    const est = await offerHandshake(socket, { remote, token: opts.token, name: opts.name, maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
    return new Peer(est, opts);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
