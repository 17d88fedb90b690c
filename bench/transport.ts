// Owns: measuring the hetis transport against plain node:net between this process and a child
// process on the same machine: round trip (median, p95, microseconds) for 64 B .. 1 MiB payloads,
// (a) a raw length-prefixed echo (each side joins a message's chunks into one buffer), (b) Peer.request echoing one Float32Array; their ratio; and
// pipelined requests/s (4 KiB, 16 in flight). One JSON line per result on stdout.
// Must not: be part of the test run, or leave a child running.
//
//   npx tsx bench/transport.ts [--scale 1]      (--scale multiplies the number of round trips)
//   (started by itself with --serve, it is the child: a hetis echo listener that prints its address)

import { spawn, type ChildProcess } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, listen, type Peer } from '../src/runtime/transport/index.js';

const SIZES = [64, 4096, 65536, 1048576];
/** Round trips per size (before --scale); a tenth more run first, unrecorded. */
const TRIPS: Record<number, number> = { 64: 4000, 4096: 4000, 65536: 1000, 1048576: 200 };
/** Round trips of one kind in a row before switching to the other. */
const BLOCK = 50;
const PIPELINE = { requests: 1000, bytes: 4096, inFlight: 16, trials: 9 };

/** Raw echo child: returns each length-prefixed message (u32 LE length + payload) as received. */
const RAW_ECHO = `
const net = require('node:net');
const srv = net.createServer((sock) => {
  sock.setNoDelay(true);
  let chunks = [], have = 0, need = -1;
  sock.on('data', (d) => {
    chunks.push(d); have += d.length;
    for (;;) {
      if (need < 0 && have >= 4) { const b = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks); chunks = [b]; need = 4 + b.readUInt32LE(0); }
      if (need < 0 || have < need) return;
      const b = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      sock.write(b.subarray(0, need));
      chunks = have > need ? [b.subarray(need)] : []; have -= need; need = -1;
    }
  });
  sock.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => process.stdout.write('127.0.0.1:' + srv.address().port + '\\n'));
`;

const emit = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const quantile = (xs: number[], q: number): number => sorted(xs)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const round = (x: number): number => +x.toPrecision(4);

/** Starts a child, returns it and the first line it prints (its address). */
async function startChild(args: string[], children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  if (first.done === true) throw new Error(`bench child ${args.join(' ')} exited before listening`);
  return first.value as string;
}

/** SIGKILL by pid unless already exited, then wait for the exit. */
function killAndReap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(child.pid!, 'SIGKILL');
  });
}

/**
 * A raw client: writes length-prefixed messages; replies (same size, in order) settle them FIFO.
 * Like the echo child, it joins each reply into one buffer, as any user of the bytes must.
 */
class RawClient {
  private readonly waiting: { need: number; resolve: (reply: Buffer) => void }[] = [];
  private chunks: Buffer[] = [];
  private have = 0;
  constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      while (this.waiting.length > 0 && this.have >= this.waiting[0]!.need) {
        const w = this.waiting.shift()!;
        const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = all.length > w.need ? [all.subarray(w.need)] : [];
        this.have -= w.need;
        w.resolve(all.subarray(0, w.need));
      }
    });
  }

  static async open(address: string): Promise<RawClient> {
    const [host, port] = address.split(':');
    const sock = netConnect({ host: host!, port: Number(port), noDelay: true });
    await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    return new RawClient(sock);
  }

  /** Writes one whole message; resolves with its echo. */
  exchange(message: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.waiting.push({ need: message.length, resolve });
      this.sock.write(message);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

function rawMessage(bytes: number): Buffer {
  const b = Buffer.alloc(4 + bytes, 7);
  b.writeUInt32LE(bytes, 0);
  return b;
}

/**
 * Round-trip times in microseconds of `trips` calls of each of a and b, alternating in blocks of
 * BLOCK so that drift in the machine's load falls on both alike; trips/10 of each run first, unrecorded.
 */
async function timeBoth(trips: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number[], number[]]> {
  const us: [number[], number[]] = [[], []];
  const one = async (call: () => Promise<unknown>, into: number[] | undefined): Promise<void> => {
    const t0 = process.hrtime.bigint();
    await call();
    into?.push(Number(process.hrtime.bigint() - t0) / 1000);
  };
  const warm = Math.ceil(trips / 10);
  for (let i = 0; i < warm; i++) {
    await one(a, undefined);
    await one(b, undefined);
  }
  for (let done = 0; done < trips; done += BLOCK) {
    const n = Math.min(BLOCK, trips - done);
    for (let i = 0; i < n; i++) await one(a, us[0]);
    for (let i = 0; i < n; i++) await one(b, us[1]);
  }
  return us;
}

function report(impl: string, bytes: number, us: number[]): { median: number; p95: number } {
  const median = quantile(us, 0.5);
  const p95 = quantile(us, 0.95);
  emit({ bench: 'transport', impl, op: 'round_trip', bytes, samples: us.length, median_us: round(median), p95_us: round(p95) });
  return { median, p95 };
}

/** Seconds to finish PIPELINE.requests calls with PIPELINE.inFlight outstanding at a time. */
async function burst(call: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < PIPELINE.requests) {
      started++;
      await call();
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: PIPELINE.inFlight }, lane));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Requests per second of a and b: the median over trials, alternating, after one unrecorded each. */
async function pipelinedBoth(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  const rates: [number[], number[]] = [[], []];
  for (let trial = 0; trial <= PIPELINE.trials; trial++) {
    const sa = await burst(a);
    const sb = await burst(b);
    if (trial === 0) continue;
    rates[0].push(PIPELINE.requests / sa);
    rates[1].push(PIPELINE.requests / sb);
  }
  return [quantile(rates[0], 0.5), quantile(rates[1], 0.5)];
}

async function main(scale: number): Promise<void> {
  const children: ChildProcess[] = [];
  let raw: RawClient | undefined;
  let peer: Peer | undefined;
  try {
    raw = await RawClient.open(await startChild(['-e', RAW_ECHO], children));
    peer = await connect(await startChild(['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], children));
    for (const bytes of SIZES) {
      const trips = Math.max(10, Math.round(TRIPS[bytes]! * scale));
      const message = rawMessage(bytes);
      const tensor = new Float32Array(bytes / 4).fill(0.5);
      const [rawUs, ourUs] = await timeBoth(trips, () => raw!.exchange(message), () => peer!.request('echo', null, [tensor]));
      const r = report('raw-net', bytes, rawUs);
      const h = report('hetis', bytes, ourUs);
      emit({ bench: 'transport', op: 'overhead', bytes, median_ratio: round(h.median / r.median), p95_ratio: round(h.p95 / r.p95) });
    }
    const pipeTensor = new Float32Array(PIPELINE.bytes / 4);
    const pipeMessage = rawMessage(PIPELINE.bytes);
    const [rawRate, ourRate] = await pipelinedBoth(() => raw!.exchange(pipeMessage), () => peer!.request('echo', null, [pipeTensor]));
    const common = { bench: 'transport', op: 'pipelined', bytes: PIPELINE.bytes, requests: PIPELINE.requests, in_flight: PIPELINE.inFlight };
    emit({ ...common, impl: 'raw-net', requests_per_s: Math.round(rawRate) });
    emit({ ...common, impl: 'hetis', requests_per_s: Math.round(ourRate), ratio_to_raw: round(ourRate / rawRate) });
  } finally {
    raw?.close();
    await peer?.close();
    await Promise.all(children.map(killAndReap));
  }
}

/** The child: a hetis listener on a free port that echoes every request's tensors. */
async function serve(): Promise<void> {
  const server = await listen('127.0.0.1:0', { handler: (m) => ({ method: 'echo', meta: null, tensors: m.tensors }) });
  process.stdout.write(`${server.address}\n`);
}

const { values } = parseArgs({ options: { serve: { type: 'boolean', default: false }, scale: { type: 'string', default: '1' } } });
if (values.serve) await serve();
else await main(Number(values.scale));
