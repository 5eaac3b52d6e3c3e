/*
 * ttrpc framing (github.com/containerd/ttrpc channel.go): every message is a 10-byte header
 *   length  uint32 BE   bytes of data after the header, at most 4 MiB
 *   stream  uint32 BE   odd, chosen by the client, increasing; the response reuses it
 *   type    uint8       1 request, 2 response, 3 data (streams)
 *   flags   uint8       0 for unary calls; streams use remote-closed 1, remote-open 2, no-data 4
 * followed by the data. FrameDecoder turns socket chunks (split or coalesced anyhow) into
 * frames and throws a FrameError for an oversized length or an unknown type: the stream is
 * then out of sync and the connection must be dropped.
 */

/** Header size in bytes. */
export const HEADER_LENGTH = 10;
/** Largest data length accepted or sent (ttrpc's messageLengthMax, 4 MiB). */
export const MAX_MESSAGE_LENGTH = 4 << 20;

/** Frame types. */
export const FrameType = { REQUEST: 1, RESPONSE: 2, DATA: 3 } as const;

/** Frame flag bits (only used by streaming calls). */
export const FrameFlags = { REMOTE_CLOSED: 0x1, REMOTE_OPEN: 0x2, NO_DATA: 0x4 } as const;

/** One decoded frame. `data` may be a view into a larger buffer: copy it to keep it long. */
export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  data: Buffer;
}

/** A framing violation; the connection it came from can no longer be parsed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Header and data of one frame as a single buffer (one socket write, so frames never interleave). */
export function encodeFrame(streamId: number, type: number, data: Uint8Array, flags = 0): Buffer {
  if (data.length > MAX_MESSAGE_LENGTH) {
    throw new FrameError(`ttrpc: message length ${data.length} exceeds maximum message size ${MAX_MESSAGE_LENGTH}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffffffff) {
    throw new FrameError(`ttrpc: invalid stream id ${streamId}`);
  }
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + data.length);
  buf.writeUInt32BE(data.length, 0);
  buf.writeUInt32BE(streamId, 4);
  buf[8] = type & 0xff;
  buf[9] = flags & 0xff;
  buf.set(data, HEADER_LENGTH);
  return buf;
}

/**
 * Incremental frame parser. Chunks are kept in a list and joined only once a whole frame is
 * present, so a 4 MiB message arriving in 64 KiB reads is copied once, not 64 times.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: FrameError | null = null;
  /** Total size (header + data) of the frame being received, once its header was checked. */
  private awaiting = 0;

  /** @param maxLength largest data length accepted (default 4 MiB). */
  constructor(private readonly maxLength = MAX_MESSAGE_LENGTH) {}

  /** Bytes received but not yet returned as part of a frame. */
  get pending(): number {
    return this.buffered;
  }

  /** Feed one chunk; returns the frames it completed (possibly none, possibly several). */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= HEADER_LENGTH) {
      if (this.awaiting === 0) {
        const head = this.peek(HEADER_LENGTH);
        const length = head.readUInt32BE(0);
        const type = head[8];
        if (length > this.maxLength) {
          this.failed = new FrameError(`ttrpc: message length ${length} exceeds maximum message size ${this.maxLength}`);
          throw this.failed;
        }
        if (type !== FrameType.REQUEST && type !== FrameType.RESPONSE && type !== FrameType.DATA) {
          this.failed = new FrameError(`ttrpc: malformed frame: unknown message type ${type}`);
          throw this.failed;
        }
        this.awaiting = HEADER_LENGTH + length;
      }
      if (this.buffered < this.awaiting) break;
      const all = this.take(this.awaiting);
      this.awaiting = 0;
      frames.push({ streamId: all.readUInt32BE(4), type: all[8], flags: all[9], data: all.subarray(HEADER_LENGTH) });
    }
    return frames;
  }

  /** The first n buffered bytes without consuming them (n <= buffered); copies at most n bytes. */
  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const c of this.chunks) {
      off += c.copy(out, off, 0, Math.min(c.length, n - off));
      if (off === n) break;
    }
    return out;
  }

  /** Remove and return the first n buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      let i = 0;
      while (off < n) {
        const c = this.chunks[i];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) i++;
        else this.chunks[i] = c.subarray(k);
      }
      this.chunks.splice(0, i); // one splice: shifting per chunk is quadratic for tiny chunks
    }
    this.buffered -= n;
    return out;
  }
}
