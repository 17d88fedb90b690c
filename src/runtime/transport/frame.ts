// Owns: the hetis wire format: encoding one frame as a header buffer plus tensor views, and decoding
// frames from a byte stream split anywhere. Must not: touch sockets, timers or handlers.
//
// Layout of one frame (all integers little-endian; total length always a multiple of 8, so frames
// sent back to back keep the 8-byte alignment of the stream):
//
//   offset  size  field
//   0       4     magic 'HTS1'            } these two stay at these offsets in every version,
//   4       2     version u16             } so any two versions can tell each other apart
//   6       1     kind u8 (FrameKind)
//   7       1     flags u8 (reserved, 0)
//   8       4     id u32 (request id; 0 = the connection itself)
//   12      4     meta byte length u32
//   16      2     tensor count u16
//   18      5·n   per tensor: dtype u8 (DType), element count u32
//   18+5n   m     meta: UTF-8 JSON of [method, meta]
//   align8  ...   tensor bytes, raw in host order (little-endian), each padded to the next 8 bytes

import { HetisError, assert } from '../../util/errors.js';

export const PROTOCOL_VERSION = 1;
/** Largest frame accepted or sent unless configured otherwise, bytes (1 GiB). */
export const DEFAULT_MAX_FRAME_BYTES = 2 ** 30;

export type Tensor = Float32Array | Int32Array | Uint8Array | Uint16Array;
/** JSON values. Numbers should be finite: NaN and ±Infinity arrive as null, as JSON has them. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** What a handler receives and returns: a method name, small JSON control data, raw tensors. */
export interface Message {
  method: string;
  meta: Json;
  tensors: Tensor[];
}

/** Frame kinds. The handshake uses challenge, hello, welcome; error with id 0 ends the connection. */
export const FrameKind = {
  challenge: 1,
  hello: 2,
  welcome: 3,
  request: 4,
  response: 5,
  error: 6,
  notify: 7,
  ping: 8,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Tensor element types on the wire. u16 carries f16 bits. */
export const DType = { f32: 1, i32: 2, u8: 3, u16: 4 } as const;
export type DType = (typeof DType)[keyof typeof DType];

/** One unit on the wire. */
export interface Frame extends Message {
  kind: FrameKind;
  /** Reserved: 0. */
  flags: number;
  /** u32: a request and its response or error share it; 0 = about the connection. */
  id: number;
}

const MAGIC = Buffer.from('HTS1', 'latin1');
const HEADER_BYTES = 18;
const ENTRY_BYTES = 5;
const MAX_TENSORS = 0xffff;
const MAX_U32 = 0xffffffff;
const ZEROS = new Uint8Array(8);
const UTF8 = new TextDecoder();

type TensorCtor = Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor | Uint16ArrayConstructor;
const CTOR: Record<DType, TensorCtor> = { 1: Float32Array, 2: Int32Array, 3: Uint8Array, 4: Uint16Array };

// Tensors travel in host byte order; the format says little-endian, so refuse a big-endian host.
assert(new Uint8Array(new Uint16Array([1]).buffer)[0] === 1, 'hetis transport needs a little-endian host');

/** Next multiple of 8 at or above n (arithmetic, not bitwise: sizes from the wire may pass 2^31). */
function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function dtypeOf(t: Tensor): DType {
  if (t instanceof Float32Array) return DType.f32;
  if (t instanceof Int32Array) return DType.i32;
  if (t instanceof Uint16Array) return DType.u16;
  if (t instanceof Uint8Array) return DType.u8;
  throw new HetisError('bad_input', `a tensor must be a Float32Array, Int32Array, Uint16Array or Uint8Array, not ${Object.prototype.toString.call(t)}`);
}

function tooLarge(bytes: number, max: number, who: string): HetisError {
  return new HetisError('bad_input', `${who} frame of ${bytes} bytes exceeds the limit of ${max} bytes (maxFrameBytes)`);
}

/** Total frame bytes: header, table and meta padded to 8, then each tensor padded to 8. */
function frameLength(tableAndMeta: number, tensorBytes: readonly number[]): number {
  let total = align8(tableAndMeta);
  for (const b of tensorBytes) total += align8(b);
  return total;
}

function metaJson(frame: Frame): string {
  try {
    return JSON.stringify([frame.method, frame.meta]);
  } catch (err) {
    throw new HetisError('bad_input', `meta of '${frame.method}' is not JSON: ${(err as Error).message}`);
  }
}

/**
 * Encodes a frame. Frames of at most `joinBytes` bytes come back as one buffer (tensors copied in);
 * larger ones without copying the tensors: [header + table + meta (padded), then per tensor a view
 * of its bytes and, when needed, zero padding]. The views alias the tensors, so the caller must not
 * change them until the parts are written. Throws HetisError('bad_input') when the frame would
 * exceed maxFrameBytes (bytes) or a tensor is not one of the four types.
 */
export function encodeFrame(frame: Frame, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES, joinBytes = 0): Uint8Array[] {
  const { tensors } = frame;
  if (tensors.length > MAX_TENSORS) throw new HetisError('bad_input', `a frame carries at most ${MAX_TENSORS} tensors, not ${tensors.length}`);
  const json = metaJson(frame);
  const metaBytes = Buffer.byteLength(json, 'utf8');
  const tableEnd = HEADER_BYTES + ENTRY_BYTES * tensors.length;
  const headBytes = align8(tableEnd + metaBytes);
  const total = frameLength(tableEnd + metaBytes, tensors.map((t) => t.byteLength));
  if (total > maxFrameBytes) throw tooLarge(total, maxFrameBytes, 'outgoing');
  const joined = total <= joinBytes;
  const head = Buffer.allocUnsafe(joined ? total : headBytes);
  writeHeader(head, frame, metaBytes);
  head.fill(0, tableEnd + head.write(json, tableEnd, 'utf8'), headBytes);
  const parts: Uint8Array[] = [head];
  let at = headBytes;
  for (const t of tensors) {
    const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    const pad = align8(t.byteLength) - t.byteLength;
    if (joined) {
      head.set(bytes, at);
      head.fill(0, at + t.byteLength, at + t.byteLength + pad);
      at += t.byteLength + pad;
      continue;
    }
    parts.push(bytes);
    if (pad > 0) parts.push(ZEROS.subarray(0, pad));
  }
  return parts;
}

function writeHeader(head: Buffer, frame: Frame, metaBytes: number): void {
  head.set(MAGIC, 0);
  head.writeUInt16LE(PROTOCOL_VERSION, 4);
  head.writeUInt8(frame.kind, 6);
  head.writeUInt8(frame.flags, 7);
  head.writeUInt32LE(frame.id, 8);
  head.writeUInt32LE(metaBytes, 12);
  head.writeUInt16LE(frame.tensors.length, 16);
  frame.tensors.forEach((t, i) => {
    if (t.length > MAX_U32) throw new HetisError('bad_input', `tensor ${i} has ${t.length} elements; at most ${MAX_U32} fit a frame`);
    head.writeUInt8(dtypeOf(t), HEADER_BYTES + ENTRY_BYTES * i);
    head.writeUInt32LE(t.length, HEADER_BYTES + ENTRY_BYTES * i + 1);
  });
}

/** The whole frame in one new buffer (tests, handshake); the transport writes large ones in parts. */
export function encodeFrameBytes(frame: Frame, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): Buffer {
  return Buffer.concat(encodeFrame(frame, maxFrameBytes, Infinity));
}

/** Where a frame's pieces lie, from its header and tensor table. */
interface Layout {
  kind: FrameKind;
  flags: number;
  id: number;
  metaStart: number;
  metaBytes: number;
  dtypes: DType[];
  counts: number[];
  total: number;
}

function printable(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? `'${text}'` : `0x${Buffer.from(bytes).toString('hex')}`;
}

/** Little-endian integers at b[o] (plain byte reads: no Buffer wrapper on the hot path). */
const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;

/** Checks magic and version (needs 6 bytes). `who` names the sender: 'peer', 'worker at HOST:PORT'. */
function checkPreamble(b: Uint8Array, who: string): void {
  if (b[0] !== MAGIC[0] || b[1] !== MAGIC[1] || b[2] !== MAGIC[2] || b[3] !== MAGIC[3]) {
    throw new HetisError('bad_input', `${who} does not speak the hetis protocol (expected magic 'HTS1', got ${printable(b.subarray(0, 4))})`);
  }
  const version = u16(b, 4);
  if (version !== PROTOCOL_VERSION) {
    throw new HetisError('unsupported', `${who} speaks hetis protocol v${version}; this hetis speaks v${PROTOCOL_VERSION}`);
  }
}

/** Reads the header and table (b holds at least 18 + 5·count bytes); checks kind, dtypes and size. */
function readLayout(b: Uint8Array, who: string, maxFrameBytes: number): Layout {
  checkPreamble(b, who);
  const kind = b[6]!;
  if (kind < FrameKind.challenge || kind > FrameKind.ping) throw new HetisError('bad_input', `${who} sent a frame of unknown kind ${kind}`);
  const metaBytes = u32(b, 12);
  const n = u16(b, 16);
  const dtypes: DType[] = [];
  const counts: number[] = [];
  const tensorBytes: number[] = [];
  for (let i = 0; i < n; i++) {
    const dtype = b[HEADER_BYTES + ENTRY_BYTES * i]!;
    if (!(dtype in CTOR)) throw new HetisError('bad_input', `${who} sent tensor ${i} of unknown dtype ${dtype}`);
    const count = u32(b, HEADER_BYTES + ENTRY_BYTES * i + 1);
    dtypes.push(dtype as DType);
    counts.push(count);
    tensorBytes.push(count * CTOR[dtype as DType].BYTES_PER_ELEMENT);
  }
  const metaStart = HEADER_BYTES + ENTRY_BYTES * n;
  const total = frameLength(metaStart + metaBytes, tensorBytes);
  if (total > maxFrameBytes) throw tooLarge(total, maxFrameBytes, `${who} sent a`);
  return { kind: kind as FrameKind, flags: b[7]!, id: u32(b, 8), metaStart, metaBytes, dtypes, counts, total };
}

/** A typed view of `count` elements at bytes[offset]; a copy only when the address is misaligned. */
function tensorAt(bytes: Uint8Array, offset: number, dtype: DType, count: number): Tensor {
  const Ctor = CTOR[dtype];
  const start = bytes.byteOffset + offset;
  if (start % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer as ArrayBuffer, start, count);
  const copy = new Ctor(count);
  new Uint8Array(copy.buffer).set(bytes.subarray(offset, offset + count * Ctor.BYTES_PER_ELEMENT));
  return copy;
}

function parseMeta(bytes: Uint8Array, layout: Layout, who: string): [string, Json] {
  const text = UTF8.decode(bytes.subarray(layout.metaStart, layout.metaStart + layout.metaBytes));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HetisError('bad_input', `${who} sent a frame whose meta is not JSON`);
  }
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string') {
    throw new HetisError('bad_input', `${who} sent a frame whose meta is not [method, meta]`);
  }
  return [value[0], value[1] as Json];
}

function decodeLaidOut(bytes: Uint8Array, layout: Layout, who: string): Frame {
  const [method, meta] = parseMeta(bytes, layout, who);
  const tensors: Tensor[] = [];
  let offset = align8(layout.metaStart + layout.metaBytes);
  layout.dtypes.forEach((dtype, i) => {
    const count = layout.counts[i]!;
    tensors.push(tensorAt(bytes, offset, dtype, count));
    offset += align8(count * CTOR[dtype].BYTES_PER_ELEMENT);
  });
  return { kind: layout.kind, flags: layout.flags, id: layout.id, method, meta, tensors };
}

export interface DecoderOptions {
  /** Largest frame accepted, bytes (default 1 GiB); a larger one is an error before it is buffered. */
  maxFrameBytes?: number;
  /** Names the sender in error messages, e.g. 'worker at 10.0.0.7:7070' (default 'peer'). */
  who?: string;
}

/** Decodes exactly one whole frame (e.g. from encodeFrameBytes). Tensors are views into `bytes`. */
export function decodeFrame(bytes: Uint8Array, opts: DecoderOptions = {}): Frame {
  const decoder = new FrameDecoder(opts);
  const frames = decoder.push(bytes);
  if (frames.length !== 1 || decoder.bufferedBytes !== 0) {
    throw new HetisError('bad_input', `expected one whole frame in ${bytes.length} bytes, found ${frames.length} and ${decoder.bufferedBytes} bytes left`);
  }
  return frames[0]!;
}

/** A fresh, 8-aligned buffer of n bytes, not zeroed (every byte is written before it is read). */
function freshBytes(n: number): Uint8Array {
  return Buffer.allocUnsafeSlow(n);
}

/**
 * Turns a byte stream cut anywhere into frames. Tensors are views into the received chunk when a
 * frame arrives whole in one chunk and the view is aligned; a frame spread over chunks is copied,
 * once, into a fresh buffer as its chunks arrive. After it throws (bad magic, other version,
 * oversized or malformed frame) every push throws again.
 */
export class FrameDecoder {
  /** Largest frame accepted, bytes; may be changed between pushes (raised after a handshake). */
  maxFrameBytes: number;
  private readonly who: string;
  /** Received bytes not yet in a frame or in `partial`. */
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Layout of the next frame once its header and table are in `chunks`. */
  private layout: Layout | undefined;
  /** A frame spread over chunks, being copied into its own buffer. */
  private partial: { bytes: Uint8Array; filled: number; layout: Layout } | undefined;
  private failure: Error | undefined;

  constructor(opts: DecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.who = opts.who ?? 'peer';
  }

  /** Bytes received but not yet part of a returned frame. */
  get bufferedBytes(): number {
    return this.buffered + (this.partial?.filled ?? 0);
  }

  /** Adds received bytes; returns the frames they complete, in order (often none, maybe several). */
  push(chunk: Uint8Array): Frame[] {
    if (this.failure !== undefined) throw this.failure;
    const frames: Frame[] = [];
    try {
      const rest = this.partial === undefined ? chunk : this.fill(chunk, frames);
      if (rest.length > 0) {
        this.chunks.push(rest);
        this.buffered += rest.length;
      }
      for (let f = this.next(); f !== undefined; f = this.next()) frames.push(f);
    } catch (err) {
      this.failure = err as Error;
      throw err;
    }
    return frames;
  }

  /** Copies what `partial` still lacks from chunk; returns the rest of the chunk. */
  private fill(chunk: Uint8Array, frames: Frame[]): Uint8Array {
    const p = this.partial!;
    const k = Math.min(chunk.length, p.layout.total - p.filled);
    p.bytes.set(chunk.subarray(0, k), p.filled);
    p.filled += k;
    if (p.filled === p.layout.total) {
      this.partial = undefined;
      frames.push(decodeLaidOut(p.bytes, p.layout, this.who));
    }
    return chunk.subarray(k);
  }

  private next(): Frame | undefined {
    if (this.partial !== undefined) return undefined;
    if (this.layout === undefined) {
      if (this.buffered < 6) return undefined;
      const head = this.peek(Math.min(this.buffered, HEADER_BYTES));
      checkPreamble(head, this.who); // before waiting on a table length read from a stranger's bytes
      if (this.buffered < HEADER_BYTES) return undefined;
      const tableEnd = HEADER_BYTES + ENTRY_BYTES * u16(head, 16);
      if (this.buffered < tableEnd) return undefined;
      this.layout = readLayout(this.peek(tableEnd), this.who, this.maxFrameBytes);
    }
    const layout = this.layout;
    if (this.buffered < layout.total) {
      this.startPartial(layout);
      return undefined;
    }
    this.layout = undefined;
    return decodeLaidOut(this.take(layout.total), layout, this.who);
  }

  /** The frame continues in later chunks: move what is here into its own buffer. */
  private startPartial(layout: Layout): void {
    const filled = this.buffered;
    const bytes = this.gather(filled, true, freshBytes(layout.total));
    this.layout = undefined;
    this.partial = { bytes, filled, layout };
  }

  /** The first n buffered bytes, contiguous (a small copy when they span chunks). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.gather(n, false, new Uint8Array(n));
  }

  /** Removes and returns the first n buffered bytes: a view when in one chunk, else a copy. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length < n) return this.gather(n, true, freshBytes(n));
    this.buffered -= n;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }

  /** Copies the first n buffered bytes to the start of `out`, consuming them when `consume`. */
  private gather(n: number, consume: boolean, out: Uint8Array): Uint8Array {
    let filled = 0;
    let used = 0;
    while (filled < n) {
      const c = this.chunks[used]!;
      const k = Math.min(c.length, n - filled);
      out.set(c.subarray(0, k), filled);
      filled += k;
      if (consume && k < c.length) this.chunks[used] = c.subarray(k);
      else used++;
    }
    if (consume) {
      this.chunks.splice(0, used);
      this.buffered -= n;
    }
    return out;
  }
}
