/*
 * A unary ttrpc server on a unix socket, as containerd dials a shim. Each request frame is
 * decoded into a ttrpc.Request and dispatched on its own promise, so a slow Create never
 * delays a State on the same connection; responses go out in completion order, each frame in
 * one socket write. Framing errors (oversized length, unknown type) drop only that
 * connection; a Request that does not decode gets an InvalidArgument status, as in Go ttrpc.
 * Socket permissions (0600 in a 0700 directory) and stale-socket handling are the caller's job.
 */
import * as net from 'net';
import { Code, TtrpcError, errorToStatus, type RpcStatus } from './errors';
import { FrameDecoder, FrameError, FrameType, encodeFrame } from './frame';
import { decode, encode, hasMethod, methodTypes, types, type Msg } from './proto';

/** What a handler learns about its call. */
export interface CallContext {
  service: string;
  method: string;
  /** Request metadata; containerd puts the namespace under `containerd-namespace-ttrpc`. */
  metadata: Record<string, string[]>;
  /** Absolute deadline (Date.now() milliseconds) from timeout_nano, if the client set one. */
  deadline?: number;
  /** Aborted when the deadline passes, the connection closes or the server closes. */
  signal: AbortSignal;
  /** The connection the request came on. */
  socket: net.Socket;
  /** Run fn once the response has been written (e.g. exit the process after Shutdown). */
  afterReply(fn: () => void): void;
}

/** A handler on encoded bytes: request payload in, response payload out. */
export type RawHandler = (payload: Buffer, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;

/** A handler on plain objects (see proto.ts decode/encode); returning nothing sends an empty message. */
export type Handler = (req: Msg, ctx: CallContext) => Promise<Msg | void> | Msg | void;

/** Metadata key under which containerd sends the namespace. */
export const NAMESPACE_METADATA_KEY = 'containerd-namespace-ttrpc';

/** Server options. */
export interface ServerOptions {
  /**
   * Accept or refuse a new connection (e.g. check SO_PEERCRED once the native addon can read
   * it). A refused or throwing check closes the connection before any frame is read.
   */
  authorize?(socket: net.Socket): boolean | Promise<boolean>;
  /** Error log; default: one line on stderr. */
  log?(message: string): void;
}

/** Bytes from a decoded message as a Buffer (protobufjs yields Buffers on Node; be sure). */
function asBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.alloc(0);
}

/**
 * One call in flight. Its AbortController is made when a handler first reads ctx.signal (few
 * do, and one per request is a measurable part of a busy shim's CPU); `reason` remembers an
 * abort that came before.
 */
interface Call {
  controller?: AbortController;
  reason?: Error;
  timer?: NodeJS.Timeout;
  done: boolean;
}

/** The ttrpc server. */
export class TtrpcServer {
  private readonly services = new Map<string, Map<string, RawHandler>>();
  private readonly sockets = new Set<net.Socket>();
  private readonly calls = new Set<Call>();
  private server: net.Server | null = null;
  private readonly log: (message: string) => void;

  constructor(private readonly options: ServerOptions = {}) {
    this.log = options.log ?? ((m) => process.stderr.write(`ttrpc: ${m}\n`));
  }

  /** Register raw-bytes handlers for a service by full name ("containerd.task.v2.Task"). */
  registerRaw(service: string, methods: Record<string, RawHandler>): this {
    const table = this.services.get(service) ?? new Map<string, RawHandler>();
    for (const [name, fn] of Object.entries(methods)) table.set(name, fn);
    this.services.set(service, table);
    return this;
  }

  /**
   * Register plain-object handlers for a service defined in the descriptors; the request and
   * response types come from the service definition. Throws for an unknown service or method.
   * The same handlers can be registered for containerd.task.v2.Task and containerd.task.v3.Task.
   */
  register(service: string, methods: Record<string, Handler>): this {
    types();
    const raw: Record<string, RawHandler> = {};
    for (const [name, fn] of Object.entries(methods)) {
      if (!hasMethod(service, name)) throw new Error(`ttrpc: ${service}/${name} is not in the protobuf descriptors`);
      // The types are looked up on the first call (a deferred package, such as task v3, is only
      // built when a client uses it).
      let mt: ReturnType<typeof methodTypes>;
      raw[name] = async (payload, ctx) => {
        mt ??= methodTypes(service, name)!;
        return encode(mt.response, (await fn(decode(mt.request, payload), ctx)) ?? {});
      };
    }
    return this.registerRaw(service, raw);
  }

  /** Open connections. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Listen on a unix socket path, or an inherited listening fd ({ fd: 3 }). */
  listen(target: string | { fd: number }): Promise<void> {
    if (this.server) return Promise.reject(new Error('ttrpc: server already listening'));
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        // Not listening: a retry (e.g. after removing a stale socket file) may listen again.
        this.server = null;
        reject(err);
      });
      const done = () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log(`listener: ${err.message}`));
        resolve();
      };
      if (typeof target === 'string') server.listen(target, done);
      else server.listen({ fd: target.fd }, done);
    });
  }

  /** Stop listening, abort calls in flight and close every connection. */
  close(): Promise<void> {
    for (const call of this.calls) this.finish(call, new TtrpcError(Code.UNAVAILABLE, 'ttrpc: server closed'));
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private async accept(socket: net.Socket): Promise<void> {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // ECONNRESET and friends: 'close' follows
    if (this.options.authorize) {
      socket.pause();
      let ok = false;
      try {
        ok = await this.options.authorize(socket);
      } catch (err) {
        this.log(`authorize: ${(err as Error).message}`);
      }
      if (!ok) {
        this.log('connection refused by authorize()');
        socket.destroy();
        return;
      }
      socket.resume();
    }
    this.serve(socket);
  }

  /** Read frames from one connection and dispatch them. */
  private serve(socket: net.Socket): void {
    const decoder = new FrameDecoder();
    const active = new Set<Call>();
    let lastStreamId = 0;
    socket.on('close', () => {
      for (const call of active) this.finish(call, new TtrpcError(Code.CANCELLED, 'ttrpc: connection closed'));
    });
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.log(`dropping connection: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type !== FrameType.REQUEST) {
          if (f.type === FrameType.DATA) this.reply(socket, f.streamId, { code: Code.UNIMPLEMENTED, message: 'ttrpc: streams are not supported' });
          continue; // a stray response frame is ignored, as in Go ttrpc
        }
        if (f.streamId % 2 !== 1) {
          this.reply(socket, f.streamId, { code: Code.INVALID_ARGUMENT, message: 'StreamID must be odd for client initiated streams' });
          continue;
        }
        if (f.streamId <= lastStreamId) {
          this.reply(socket, f.streamId, { code: Code.INVALID_ARGUMENT, message: 'StreamID cannot be re-used and must increment' });
          continue;
        }
        lastStreamId = f.streamId;
        this.dispatch(socket, f.streamId, f.data, active);
      }
    });
  }

  /** Decode one Request and run its handler without awaiting it. */
  private dispatch(socket: net.Socket, streamId: number, data: Buffer, active: Set<Call>): void {
    let req: Msg;
    try {
      req = decode(types().ttrpc.Request, data);
    } catch (err) {
      this.reply(socket, streamId, { code: Code.INVALID_ARGUMENT, message: `unmarshal request error: ${(err as Error).message}` });
      return;
    }
    const service = String(req.service);
    const method = String(req.method);
    const handler = this.services.get(service)?.get(method);
    if (!handler) {
      const what = this.services.has(service) ? `method ${method}` : `service ${service}`;
      this.reply(socket, streamId, { code: Code.UNIMPLEMENTED, message: `${what} is not implemented` });
      return;
    }
    const metadata: Record<string, string[]> = {};
    for (const kv of req.metadata as { key: string; value: string }[]) (metadata[kv.key] ??= []).push(kv.value);

    const call: Call = { done: false };
    const after: (() => void)[] = [];
    const timeoutMs = Number(req.timeout_nano) / 1e6;
    const ctx: CallContext = {
      service,
      method,
      metadata,
      get signal() {
        if (!call.controller) {
          call.controller = new AbortController();
          if (call.reason) call.controller.abort(call.reason);
        }
        return call.controller.signal;
      },
      socket,
      afterReply: (fn) => after.push(fn),
    };
    // Beyond setTimeout's range (~24.8 days) Node would fire after 1 ms: treat as no deadline.
    if (timeoutMs > 0 && timeoutMs < 0x7fffffff) {
      ctx.deadline = Date.now() + timeoutMs;
      call.timer = setTimeout(() => {
        const err = new TtrpcError(Code.DEADLINE_EXCEEDED, `${service}/${method}: context deadline exceeded`);
        if (this.finish(call, err)) this.reply(socket, streamId, errorToStatus(err));
      }, Math.ceil(timeoutMs));
    }
    active.add(call);
    this.calls.add(call);
    const settle = (status: RpcStatus, payload?: Uint8Array) => {
      active.delete(call);
      if (this.finish(call)) this.reply(socket, streamId, status, payload, after);
    };
    Promise.resolve()
      .then(() => handler(asBuffer(req.payload), ctx))
      .then(
        (payload) => settle({ code: Code.OK, message: '' }, payload),
        (err) => settle(errorToStatus(err)),
      );
  }

  /** Mark a call finished (aborting its signal with reason if given); false if it already was. */
  private finish(call: Call, reason?: Error): boolean {
    if (call.done) return false;
    call.done = true;
    if (call.timer) clearTimeout(call.timer);
    this.calls.delete(call);
    if (reason) {
      call.reason = reason;
      call.controller?.abort(reason);
    }
    return true;
  }

  /** Write one Response frame; after-reply hooks run once it has been flushed. */
  private reply(socket: net.Socket, streamId: number, status: RpcStatus, payload?: Uint8Array, after: (() => void)[] = []): void {
    if (socket.destroyed) return;
    const Response = types().ttrpc.Response;
    let frame: Buffer;
    try {
      frame = encodeFrame(streamId, FrameType.RESPONSE, encode(Response, { status, payload: payload ?? new Uint8Array(0) }));
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      const st = { code: Code.RESOURCE_EXHAUSTED, message: err.message };
      frame = encodeFrame(streamId, FrameType.RESPONSE, encode(Response, { status: st }));
    }
    socket.write(frame, () => {
      for (const fn of after) {
        try {
          fn();
        } catch (err) {
          this.log(`afterReply: ${(err as Error).message}`);
        }
      }
    });
  }
}
