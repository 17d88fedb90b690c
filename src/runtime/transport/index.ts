// Owns: the public face of the hetis transport (binary frames, peers, connect/listen).
// Must not: hold logic of its own.

export { parseAddress, formatAddress, DEFAULT_HOST, type Address } from './address.js';
export { connect, type ConnectOptions } from './client.js';
export { RemoteError, TransportError } from './errors.js';
export {
  DEFAULT_MAX_FRAME_BYTES, DType, FrameDecoder, FrameKind, PROTOCOL_VERSION, decodeFrame, encodeFrame, encodeFrameBytes,
  type DecoderOptions, type Frame, type Json, type Message, type Tensor,
} from './frame.js';
export { Peer, type Handler, type PeerOptions, type RequestOptions } from './peer.js';
export { listen, type ListenOptions, type TransportServer } from './server.js';
