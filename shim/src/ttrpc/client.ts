/*
 * A unary ttrpc client over a unix socket: what the shim uses to call containerd's
 * containerd.services.events.ttrpc.v1.Events/Forward on $TTRPC_ADDRESS (and what the tests use
 * to drive TtrpcServer). Calls are multiplexed on one connection with odd, increasing stream
 * ids; a non-OK Status rejects with a TtrpcError carrying its code.
 */
import * as net from 'net';
import { Code, TtrpcError, statusToError, type RpcStatus } from './errors';
import { FrameDecoder, FrameType, encodeFrame } from './frame';
import { decode, encode, methodTypes, types, type Msg } from './proto';

/** Per-call options. */
export interface CallOptions {
  /** Sent as timeout_nano and enforced locally (rejects with DEADLINE_EXCEEDED, code 4). */
  timeoutMs?: number;
  /** Request metadata; e.g. { 'containerd-namespace-ttrpc': 'default' }. */
  metadata?: Record<string, string | string[]>;
  /** Abort the call locally (rejects with CANCELLED, code 1). */
  signal?: AbortSignal;
}

/** A call waiting for its response. */
interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
}

/** "unix:///path" or "/path" -> "/path". Other schemes are refused. */
export function socketPath(address: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) throw new Error(`ttrpc: unsupported address ${address}`);
  return address;
}

/** A connection to a ttrpc server. */
export class TtrpcClient {
  private nextStreamId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.fail(new TtrpcError(Code.INTERNAL, (err as Error).message));
        return;
      }
      for (const f of frames) {
        if (f.type !== FrameType.RESPONSE) continue;
        const p = this.pending.get(f.streamId);
        if (!p) continue; // a call that timed out locally
        this.pending.delete(f.streamId);
        let resp: Msg;
        try {
          resp = decode(types().ttrpc.Response, f.data);
        } catch (err) {
          p.reject(new TtrpcError(Code.INTERNAL, `ttrpc: malformed response: ${(err as Error).message}`));
          continue;
        }
        const status = resp.status as RpcStatus | null;
        if (status && status.code !== Code.OK) p.reject(statusToError(status));
        else p.resolve(Buffer.from(resp.payload as Uint8Array));
      }
    });
    socket.on('error', (err) => this.fail(new TtrpcError(Code.UNAVAILABLE, `ttrpc: ${err.message}`)));
    socket.on('close', () => this.fail(new TtrpcError(Code.UNAVAILABLE, 'ttrpc: connection closed')));
  }

  /** Connect to "unix:///path" or "/path"; rejects after timeoutMs (default 10 s). */
  static connect(address: string, opts: { timeoutMs?: number } = {}): Promise<TtrpcClient> {
    const path = socketPath(address);
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TtrpcError(Code.DEADLINE_EXCEEDED, `ttrpc: connect ${path}: timed out`));
      }, opts.timeoutMs ?? 10_000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new TtrpcError(Code.UNAVAILABLE, `ttrpc: connect ${path}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TtrpcClient(socket));
      });
    });
  }

  /** Whether the connection is gone (every later call rejects with UNAVAILABLE). */
  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Call service/method with an encoded request; resolves with the encoded response. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (opts.signal?.aborted) return Promise.reject(new TtrpcError(Code.CANCELLED, `${service}/${method}: cancelled`));
    const streamId = this.nextStreamId;
    if (streamId > 0xffffffff) return Promise.reject(new TtrpcError(Code.RESOURCE_EXHAUSTED, 'ttrpc: stream ids exhausted'));
    this.nextStreamId += 2;
    const metadata: { key: string; value: string }[] = [];
    for (const [key, v] of Object.entries(opts.metadata ?? {})) {
      for (const value of Array.isArray(v) ? v : [v]) metadata.push({ key, value });
    }
    const timeoutMs = opts.timeoutMs && opts.timeoutMs > 0 ? Math.min(opts.timeoutMs, 0x7fffffff) : 0;
    const req = { service, method, payload, timeout_nano: Math.round(timeoutMs * 1e6), metadata };
    const frame = encodeFrame(streamId, FrameType.REQUEST, encode(types().ttrpc.Request, req));

    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const onAbort = () => done(new TtrpcError(Code.CANCELLED, `${service}/${method}: cancelled`));
      const done = (err: Error | null, value?: Buffer) => {
        if (settled) return;
        settled = true;
        this.pending.delete(streamId); // a late response for this stream id is then ignored
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as Buffer);
      };
      this.pending.set(streamId, { resolve: (v) => done(null, v), reject: (e) => done(e) });
      if (timeoutMs) {
        timer = setTimeout(() => done(new TtrpcError(Code.DEADLINE_EXCEEDED, `${service}/${method}: context deadline exceeded`)), timeoutMs);
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(frame);
    });
  }

  /** Call with plain objects, the types taken from the service definition in the descriptors. */
  async invoke<T extends Msg = Msg>(service: string, method: string, req: Msg, opts: CallOptions = {}): Promise<T> {
    const mt = methodTypes(service, method);
    if (!mt) throw new TtrpcError(Code.UNIMPLEMENTED, `ttrpc: ${service}/${method} is not in the protobuf descriptors`);
    return decode<T>(mt.response, await this.call(service, method, encode(mt.request, req), opts));
  }

  /** Close the connection; calls in flight reject with UNAVAILABLE. */
  close(): void {
    this.fail(new TtrpcError(Code.UNAVAILABLE, 'ttrpc: client closed'));
  }

  /** Reject everything pending and refuse later calls with err. */
  private fail(err: Error): void {
    if (!this.closedError) this.closedError = err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
    this.socket.destroy();
  }
}
