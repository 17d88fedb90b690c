// Owns: a worker as a network service (`hetis worker`): it listens on the transport, is told
// what to be by an `assign` message (loading weights when it is a primary, connecting to the
// attention devices and its tensor-parallel peers), and answers steps, attention, KV moves and
// stats through its WorkerCore. Must not: schedule or decide placement.

import { loadModel } from '../model/load.js';
import { HetisError } from '../util/errors.js';
import { kvBytesPerHeadPosition } from './cluster-layout.js';
import type { PrimaryStep, WorkerAssignment } from './cluster-types.js';
import type { HeadKvExport } from './head-kv.js';
import type { AttentionItem } from './head-attention.js';
import type { MatmulKernels } from './kernels/types.js';
import type { AllReduce, RemoteAttention, StepSequence } from './primary.js';
import { connect, listen, type Json, type Message, type Peer, type Tensor, type TransportServer } from './transport/index.js';
import { WorkerCore } from './worker-core.js';

export interface WorkerOptions {
  /** HOST:PORT or unix:/path (port 0: any free port). */
  listen: string;
  /** Cluster token: peers must present it (and this worker presents it to its peers). */
  token?: string;
  /** KV bytes this worker may hold at most (an assignment asking for more is refused). */
  kvCapacityBytes?: number;
  kernels: MatmulKernels;
  /** Heartbeat timeout towards peers, ms. */
  timeoutMs?: number;
  /** Connections accepted at once (default 64); more are refused with a message. */
  maxConnections?: number;
  log?: (line: string) => void;
}

/** A running worker. */
export interface RunningWorker {
  address: string;
  /** Resolves when a `shutdown` message arrives or close() is called. */
  closed: Promise<void>;
  close(): Promise<void>;
}

function f32(t: Tensor | undefined, what: string): Float32Array {
  if (!(t instanceof Float32Array)) throw new HetisError('bad_input', `${what}: expected a float32 tensor`);
  return t;
}

function i32(t: Tensor | undefined, what: string): Int32Array {
  if (!(t instanceof Int32Array)) throw new HetisError('bad_input', `${what}: expected an int32 tensor`);
  return t;
}

const reply = (meta: Json, tensors: Tensor[] = []): Message => ({ method: 'ok', meta, tensors });

/** Sums across the stage's ranks over the transport: every rank sends its part to every other. */
class PeerAllReduce implements AllReduce {
  private readonly inbox = new Map<string, { parts: Map<number, Float32Array>; wake?: () => void }>();
  constructor(private readonly rank: number, private readonly size: number, private readonly peers: ReadonlyMap<number, Peer>) {}

  deliver(tag: string, from: number, part: Float32Array): void {
    const e = this.entry(tag);
    e.parts.set(from, part);
    if (e.parts.size === this.size - 1) e.wake?.();
  }

  async sum(buf: Float32Array, length: number, tag: string): Promise<void> {
    const mine = buf.slice(0, length);
    await Promise.all([...this.peers.values()].map((p) => p.notify('allreduce', { tag, rank: this.rank }, [mine])));
    const e = this.entry(tag);
    if (e.parts.size < this.size - 1) await new Promise<void>((r) => { e.wake = r; });
    this.inbox.delete(tag);
    buf.fill(0, 0, length);
    for (let r = 0; r < this.size; r++) {
      const part = r === this.rank ? mine : e.parts.get(r)!;
      for (let i = 0; i < length; i++) buf[i]! += part[i]!;
    }
  }

  private entry(tag: string): { parts: Map<number, Float32Array>; wake?: () => void } {
    let e = this.inbox.get(tag);
    if (e === undefined) { e = { parts: new Map() }; this.inbox.set(tag, e); }
    return e;
  }
}

/** Starts a worker listening on `o.listen`. */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const log = o.log ?? (() => {});
  let core: WorkerCore | undefined;
  let allReduce: PeerAllReduce | undefined;
  const outgoing: Peer[] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => { resolveClosed = r; });
  let server: TransportServer | undefined;

  /** Attention devices this primary sends to, by device id (mutated when one is replaced). */
  const remotes = new Map<string, RemoteAttention>();
  const remotePeers = new Map<string, Peer>();
  let peerOpts: { token?: string; timeoutMs?: number; name?: string } = {};

  /** Connects to attention device `id` at `addr`, replacing an earlier connection to it. */
  const linkAttention = async (id: string, addr: string): Promise<void> => {
    const peer = await connect(addr, peerOpts);
    const old = remotePeers.get(id);
    if (old !== undefined) { outgoing.splice(outgoing.indexOf(old), 1); void old.close(); }
    outgoing.push(peer);
    remotePeers.set(id, peer);
    remotes.set(id, {
      attend: async (layer, items, q, k, v) => {
        const r = await peer.request('attend', { layer, items: items as unknown as Json }, [q, k, v]);
        return f32(r.tensors[0], `attention output from ${id}`);
      },
    });
  };

  const need = (): WorkerCore => {
    if (core === undefined) throw new HetisError('bad_input', 'this worker has no assignment yet');
    return core;
  };

  /** Back to unassigned (the engine that assigned it went away): KV, weights and peer links dropped. */
  const reset = async (why: string): Promise<void> => {
    if (core === undefined) return;
    log(`${why}: dropping the assignment (${core.a.deviceId}) and waiting for an engine`);
    core = undefined;
    allReduce = undefined;
    remotes.clear();
    remotePeers.clear();
    const links = outgoing.splice(0);
    await Promise.all(links.map((p) => p.close()));
  };

  const assign = async (a: WorkerAssignment, from: Peer): Promise<Json> => {
    if (core !== undefined) throw new HetisError('bad_input', `this worker is already assigned to ${core.a.deviceId} by another engine`);
    from.onClose(() => { void reset('the engine disconnected'); });
    const bytes = a.kv.capacityBlocks * a.kv.blockSize * kvBytesPerHeadPosition(a.spec, a.kv.layers[1] - a.kv.layers[0]);
    if (o.kvCapacityBytes !== undefined && bytes > o.kvCapacityBytes) {
      throw new HetisError('bad_input', `assigned ${bytes} bytes of KV, but this worker was started with --kv-capacity ${o.kvCapacityBytes}`);
    }
    const opts = { ...(o.token !== undefined ? { token: o.token } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) };
    remotes.clear();
    let model;
    if (a.primary !== undefined) {
      if (a.modelPath === undefined) throw new HetisError('bad_input', 'a primary assignment needs modelPath');
      model = loadModel(a.modelPath).model;
      peerOpts = { ...opts, name: `${a.deviceId} rank ${a.primary.rank} stage ${a.primary.stage}` };
      for (const [id, addr] of Object.entries(a.attentionPeers)) await linkAttention(id, addr);
      const p = a.primary;
      if (p.size > 1) {
        const peers = new Map<number, Peer>();
        for (let r = 0; r < p.size; r++) {
          if (r === p.rank) continue;
          const peer = await connect(p.tpPeers[r]!, { ...opts, name: `tp rank ${p.rank}` });
          outgoing.push(peer);
          peers.set(r, peer);
        }
        allReduce = new PeerAllReduce(p.rank, p.size, peers);
      }
    }
    core = new WorkerCore(a, model, o.kernels, { remotes, ...(allReduce !== undefined ? { allReduce } : {}) });
    log(`assigned: ${a.deviceId}${a.primary ? ` primary stage ${a.primary.stage}/${a.primary.stages} rank ${a.primary.rank}/${a.primary.size} layers [${a.primary.layers.join(', ')})` : ' attention'}, ${a.kv.capacityBlocks} KV blocks`);
    return { pid: process.pid };
  };

  const handle = async (m: Message, from: Peer): Promise<Message | void> => {
    const meta = (m.meta ?? {}) as Record<string, unknown>;
    switch (m.method) {
      case 'info':
        return reply({ pid: process.pid, assigned: core?.a.deviceId ?? null, kernels: o.kernels.name, kvCapacityBytes: o.kvCapacityBytes ?? null });
      case 'assign':
        return reply(await assign(meta as unknown as WorkerAssignment, from));
      case 'step': {
        const [tokens, seqs, positions, logitRows, x] = m.tensors;
        const s: PrimaryStep = {
          index: Number(meta['index']), tokens: i32(tokens, 'tokens'), seqs: i32(seqs, 'seqs'), positions: i32(positions, 'positions'),
          logitRows: i32(logitRows, 'logit rows'), sequences: meta['sequences'] as StepSequence[],
          sampling: meta['sampling'] as PrimaryStep['sampling'],
          ...(x !== undefined ? { x: f32(x, 'hidden states') } : {}),
        };
        const r = await need().step(s);
        return reply({ timing: r.timing as unknown as Json, tokens: r.tokens !== undefined }, r.tokens !== undefined ? [r.x, r.tokens] : [r.x]);
      }
      case 'attend': {
        const [q, k, v] = m.tensors;
        const out = await need().attend(Number(meta['layer']), meta['items'] as AttentionItem[], f32(q, 'q'), f32(k, 'k'), f32(v, 'v'));
        return reply(null, [out]);
      }
      case 'allreduce':
        if (allReduce === undefined) throw new HetisError('bad_input', 'all-reduce sent to a worker outside a tensor-parallel group');
        allReduce.deliver(String(meta['tag']), Number(meta['rank']), f32(m.tensors[0], 'all-reduce part'));
        return;
      case 'peers.update':
        if (need().a.primary === undefined) throw new HetisError('bad_input', 'only primaries connect to attention devices');
        await linkAttention(String(meta['deviceId']), String(meta['address']));
        return reply(null);
      case 'free':
        need().free(meta['seqs'] as number[]);
        return reply(null);
      case 'kv.export': {
        const x = need().exportHead(Number(meta['seq']), Number(meta['head']));
        return reply({ length: x.length, layers: x.layers }, [x.data]);
      }
      case 'kv.import': {
        const x: HeadKvExport = { length: Number(meta['length']), layers: meta['layers'] as [number, number], data: f32(m.tensors[0], 'KV') };
        need().importHead(Number(meta['seq']), Number(meta['head']), x);
        return reply(null);
      }
      case 'kv.drop':
        need().dropHead(Number(meta['seq']), Number(meta['head']));
        return reply(null);
      case 'stats':
        return reply(need().stats() as unknown as Json);
      case 'shutdown':
        setImmediate(() => { void close(); });
        return reply(null);
      default:
        throw new HetisError('bad_input', `unknown method '${m.method}'`);
    }
  };

  const close = async (): Promise<void> => {
    await Promise.all(outgoing.map((p) => p.close()));
    await server?.close();
    resolveClosed();
  };

  server = await listen(o.listen, {
    handler: (m, from) => handle(m, from),
    // An engine and the primaries of one cluster connect here: a few connections, never hundreds.
    maxConnections: o.maxConnections ?? 64,
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
  log(`listening on ${server.address} (pid ${process.pid})`);
  return { address: server.address, closed, close };
}
