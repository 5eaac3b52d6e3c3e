/* ttrpc transport and shim protobuf messages: framing, field numbers, client <-> server behaviour. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { FrameDecoder, FrameError, FrameType, HEADER_LENGTH, MAX_MESSAGE_LENGTH, encodeFrame } from '../../shim/src/ttrpc/frame';
import { Code, TtrpcError, errorToStatus } from '../../shim/src/ttrpc/errors';
import {
  TaskStatus,
  TYPE_URL_OCI_PROCESS,
  decode,
  encode,
  fromTimestamp,
  packJson,
  timestamp,
  types,
  unpackAny,
} from '../../shim/src/ttrpc/proto';
import { TtrpcServer, NAMESPACE_METADATA_KEY } from '../../shim/src/ttrpc/server';
import { TtrpcClient, socketPath } from '../../shim/src/ttrpc/client';
import { EVENTS_SERVICE, EventPublisher, forwardRequest } from '../../shim/src/ttrpc/events';
import { ShoalError } from '../../shim/src/runtime/errors';

const TASK = 'containerd.task.v2.Task';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-ttrpc-'));
let sockN = 0;
const sock = () => path.join(dir, `s${++sockN}.sock`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { log: () => {} };
/** Servers and clients to close even when a test fails (an open listener would hang the suite). */
const open: { close(): unknown }[] = [];
/** A TtrpcServer closed at the end of the suite whatever happens. */
function newServer(opts: ConstructorParameters<typeof TtrpcServer>[0] = quiet): TtrpcServer {
  const s = new TtrpcServer(opts);
  open.push(s);
  return s;
}
/** A connected client closed at the end of the suite whatever happens. */
async function connect(p: string): Promise<TtrpcClient> {
  const c = await TtrpcClient.connect(p);
  open.push(c);
  return c;
}

/** Assert a promise rejects with a TtrpcError of `code`; returns the error. */
async function rejectsCode(p: Promise<unknown>, code: number): Promise<TtrpcError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, TtrpcError);
    assert.is((e as TtrpcError).code, code, (e as Error).message);
    return e as TtrpcError;
  }
  throw new assert.Assertion({ message: `expected rejection with code ${code}`, operator: 'rejects', actual: 'resolved', expects: code, generated: false });
}

/** Raw socket: send bytes, collect response frames until `count` arrived or the socket closes. */
function rawExchange(p: string, bytes: Buffer, count: number): Promise<{ frames: ReturnType<FrameDecoder['push']>; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const dec = new FrameDecoder();
    const frames: ReturnType<FrameDecoder['push']> = [];
    s.on('data', (c) => {
      frames.push(...dec.push(c));
      if (frames.length >= count) {
        s.destroy();
        resolve({ frames, closed: false });
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ frames, closed: true }));
    s.write(bytes);
  });
}

/** An encoded ttrpc Request frame. */
function requestFrame(streamId: number, req: Record<string, unknown>): Buffer {
  return encodeFrame(streamId, FrameType.REQUEST, encode(types().ttrpc.Request, req));
}

test('frame: header layout is length BE, stream id BE, type, flags', () => {
  const f = encodeFrame(3, FrameType.REQUEST, Buffer.from('hi'), 0);
  assert.equal([...f], [0, 0, 0, 2, 0, 0, 0, 3, 1, 0, 0x68, 0x69]);
  assert.throws(() => encodeFrame(1, 1, Buffer.alloc(MAX_MESSAGE_LENGTH + 1)), /exceeds maximum/);
});

test('frame: decoder handles byte-by-byte splits and coalesced chunks', () => {
  const a = encodeFrame(1, 1, Buffer.from('first'));
  const b = encodeFrame(3, 2, Buffer.alloc(0), 4);
  const c = encodeFrame(5, 3, Buffer.alloc(70000, 7));
  const all = Buffer.concat([a, b, c]);
  const d1 = new FrameDecoder();
  const got = [];
  for (let i = 0; i < all.length; i++) got.push(...d1.push(all.subarray(i, i + 1)));
  const d2 = new FrameDecoder();
  const got2 = [...d2.push(all.subarray(0, 7)), ...d2.push(all.subarray(7, a.length + 12)), ...d2.push(all.subarray(a.length + 12))];
  for (const g of [got, got2, new FrameDecoder().push(all)]) {
    assert.is(g.length, 3);
    assert.equal([g[0].streamId, g[0].type, g[0].flags, g[0].data.toString()], [1, 1, 0, 'first']);
    assert.equal([g[1].streamId, g[1].type, g[1].flags, g[1].data.length], [3, 2, 4, 0]);
    assert.equal([g[2].streamId, g[2].type, g[2].data.length, g[2].data[69999]], [5, 3, 70000, 7]);
  }
  assert.is(d1.pending, 0);
});

test('frame: oversized length and unknown type are rejected', () => {
  const big = Buffer.alloc(HEADER_LENGTH);
  big.writeUInt32BE(MAX_MESSAGE_LENGTH + 1, 0);
  big[8] = 1;
  const d = new FrameDecoder();
  assert.throws(() => d.push(big), (e: Error) => e instanceof FrameError && /exceeds maximum message size/.test(e.message));
  assert.throws(() => d.push(Buffer.alloc(1)), (e: Error) => e instanceof FrameError); // stays failed
  const bad = encodeFrame(1, 9, Buffer.alloc(0));
  assert.throws(() => new FrameDecoder().push(bad), /unknown message type 9/);
  assert.is(new FrameDecoder().push(encodeFrame(1, 1, Buffer.alloc(MAX_MESSAGE_LENGTH))).length, 1);
});

test('proto: a hand-encoded CreateTaskRequest decodes with containerd field numbers', () => {
  const bytes = Buffer.from([
    0x0a, 3, 0x61, 0x62, 0x63, // 1 id "abc"
    0x12, 2, 0x2f, 0x62, // 2 bundle "/b"
    0x1a, 9, 0x0a, 7, ...Buffer.from('overlay'), // 3 rootfs [Mount{type 1 "overlay"}]
    0x20, 1, // 4 terminal true
    0x3a, 1, 0x65, // 7 stderr "e"
    0x52, 5, 0x0a, 1, 0x78, 0x12, 0, // 10 options Any{type_url "x", value ""}
  ]);
  const req = decode(types().task.CreateTaskRequest, bytes);
  assert.is(req.id, 'abc');
  assert.is(req.bundle, '/b');
  assert.is(req.terminal, true);
  assert.is(req.stderr, 'e');
  assert.is(req.rootfs[0].type, 'overlay');
  assert.is(req.options.type_url, 'x');
  assert.is(req.stdin, '');
});

test('proto: StateResponse, ttrpc Request and DeleteResponse encode to known bytes', () => {
  const t = types();
  const st = encode(t.task.StateResponse, { id: 'c', pid: 7, status: TaskStatus.STOPPED, exit_status: 1, exec_id: 'e' });
  assert.is(Buffer.from(st).toString('hex'), '0a0163' + '1807' + '2003' + '4801' + '5a0165');
  const req = encode(t.ttrpc.Request, { service: 'S', method: 'M', payload: Buffer.from([1]), timeout_nano: 1000, metadata: [{ key: 'k', value: 'v' }] });
  assert.is(Buffer.from(req).toString('hex'), '0a0153' + '12014d' + '1a0101' + '20e807' + '2a06' + '0a016b' + '120176');
  const del = decode(t.task.DeleteResponse, encode(t.task.DeleteResponse, { pid: 9, exit_status: 137, exited_at: timestamp(new Date(1700000000123)) }));
  assert.is(del.exit_status, 137);
  assert.is(fromTimestamp(del.exited_at)!.getTime(), 1700000000123);
  assert.ok(t.taskV3.CreateTaskRequest && t.taskV3.StateResponse, 'task v3 package present');
  assert.ok(t.cgroupsV1.Metrics.fields.memory_oom_control && t.cgroupsV2.Metrics.fields.memory_events);
  assert.is(t.bootstrap.BootstrapParams.fields.containerd_ttrpc_address.id, 5);
  assert.is(t.runc.Options.fields.systemd_cgroup.id, 9);
});

test('proto: BootstrapParams (negative enum, optional field) and uint64 max in Metrics', () => {
  const t = types();
  // instance_id 1 "c", log_level 3 = -4 (DEBUG, 10-byte varint), socket_dir 9 "/s"
  const bytes = Buffer.from('0a0163' + '18fcffffffffffffffff01' + '4a022f73', 'hex');
  const bp = decode(t.bootstrap.BootstrapParams, bytes);
  assert.equal([bp.instance_id, bp.log_level, bp.socket_dir], ['c', -4, '/s']);
  assert.is(decode(t.bootstrap.BootstrapParams, Buffer.from('0a0163', 'hex')).socket_dir, undefined);
  // memory.max "max" is reported as MaxUint64: a string keeps every bit.
  const m = encode(t.cgroupsV2.MemoryStat, { usage_limit: '18446744073709551615' });
  assert.is(Buffer.from(m).toString('hex'), '8802' + 'ffffffffffffffffff01');
  assert.is((t.cgroupsV2.MemoryStat.decode(m) as unknown as { usage_limit: object }).usage_limit.toString(), '18446744073709551615');
  const v1 = decode(t.cgroupsV1.Metrics, encode(t.cgroupsV1.Metrics, { memory: { swap: { limit: 5 }, kernel_tcp: { failcnt: 2 } }, pids: { current: 3 } }));
  assert.equal([v1.memory.swap.limit, v1.memory.kernel_tcp.failcnt, v1.pids.current], [5, 2, 3]);
});

test('proto: JSON Anys (OCI Process) round-trip through unpackAny', () => {
  const any = packJson(TYPE_URL_OCI_PROCESS, { args: ['sh'], cwd: '/' });
  const u = unpackAny(any)!;
  assert.is(u.kind, 'json');
  assert.equal(u.message, { args: ['sh'], cwd: '/' });
  assert.is(unpackAny({ type_url: 'example.com/Unknown', value: new Uint8Array(0) })!.kind, 'unknown');
  assert.is(unpackAny(null), null);
});

test('client <-> server: State round trip on v2 and v3 with metadata', async () => {
  const p = sock();
  const server = newServer();
  let seenNs: string[] | undefined;
  const handlers = {
    State: async (req: Record<string, any>, ctx: { metadata: Record<string, string[]> }) => {
      seenNs = ctx.metadata[NAMESPACE_METADATA_KEY];
      return { id: req.id, bundle: '/run/b', pid: 42, status: TaskStatus.RUNNING, exec_id: req.exec_id, exited_at: timestamp(0) };
    },
  };
  server.register(TASK, handlers).register('containerd.task.v3.Task', handlers);
  await server.listen(p);
  const client = await TtrpcClient.connect(`unix://${p}`);
  open.push(client);
  const t = types();
  const raw = await client.call(TASK, 'State', encode(t.task.StateRequest, { id: 'c1', exec_id: 'x' }), {
    metadata: { [NAMESPACE_METADATA_KEY]: 'k8s.io' },
  });
  const resp = decode(t.task.StateResponse, raw);
  assert.equal([resp.id, resp.bundle, resp.pid, resp.status, resp.exec_id], ['c1', '/run/b', 42, 2, 'x']);
  assert.equal(seenNs, ['k8s.io']);
  const v3 = await client.invoke('containerd.task.v3.Task', 'State', { id: 'c2' });
  assert.is(v3.id, 'c2');
  client.close();
  await server.close();
});

test('server: unknown service or method -> Unimplemented (12)', async () => {
  const p = sock();
  const server = newServer().register(TASK, { State: () => ({}) });
  await server.listen(p);
  const client = await connect(p);
  await rejectsCode(client.call(TASK, 'Nope', Buffer.alloc(0)), Code.UNIMPLEMENTED);
  await rejectsCode(client.call('x.Y', 'State', Buffer.alloc(0)), Code.UNIMPLEMENTED);
  await rejectsCode(client.invoke(TASK, 'Pause', { id: 'a' }), Code.UNIMPLEMENTED);
  client.close();
  await server.close();
});

test('server: handler errors map to status codes', async () => {
  const p = sock();
  const throwing = (err: unknown) => () => {
    throw err;
  };
  const server = newServer().registerRaw('t.S', {
    NotFound: throwing(new ShoalError('NOT_FOUND', 'container "x" does not exist')),
    Exists: throwing(new ShoalError('ALREADY_EXISTS', 'exists')),
    State: throwing(new ShoalError('INVALID_STATE', 'not running')),
    Config: throwing(new ShoalError('INVALID_CONFIG', 'bad')),
    Unsupported: throwing(new ShoalError('UNSUPPORTED', 'no')),
    Grpc: async () => Promise.reject(Object.assign(new Error('busy'), { grpcCode: Code.UNAVAILABLE })),
    Plain: throwing(new Error('boom')),
    Str: throwing('just a string'),
  });
  await server.listen(p);
  const c = await connect(p);
  const call = (m: string) => c.call('t.S', m, Buffer.alloc(0));
  const e = await rejectsCode(call('NotFound'), 5);
  assert.is(e.message, 'container "x" does not exist');
  await rejectsCode(call('Exists'), 6);
  await rejectsCode(call('State'), 9);
  await rejectsCode(call('Config'), 3);
  await rejectsCode(call('Unsupported'), 12);
  await rejectsCode(call('Grpc'), 14);
  await rejectsCode(call('Plain'), 2);
  assert.is((await rejectsCode(call('Str'), 2)).message, 'just a string');
  assert.equal(errorToStatus(new TtrpcError(0, 'odd')).code, Code.UNKNOWN);
  c.close();
  await server.close();
});

test('server: timeout_nano -> DeadlineExceeded (4) and the handler signal aborts', async () => {
  const p = sock();
  let aborted = false;
  const server = newServer().registerRaw('t.S', {
    Slow: (_req, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          resolve(Buffer.alloc(0));
        });
      }),
  });
  await server.listen(p);
  // Raw request with a 50 ms timeout and no client-side timer: the server must answer.
  const { frames } = await rawExchange(p, requestFrame(1, { service: 't.S', method: 'Slow', timeout_nano: 50e6 }), 1);
  const resp = decode(types().ttrpc.Response, frames[0].data);
  assert.is(frames[0].streamId, 1);
  assert.is(resp.status.code, Code.DEADLINE_EXCEEDED);
  assert.ok(aborted, 'handler signal aborted');
  const c = await connect(p);
  await rejectsCode(c.call('t.S', 'Slow', Buffer.alloc(0), { timeoutMs: 30 }), Code.DEADLINE_EXCEEDED);
  c.close();
  await server.close();
});

test('server: a handler that reads its signal only after the deadline finds it aborted, with the reason', async () => {
  const p = sock();
  let seen: { aborted: boolean; code?: number } | undefined;
  const server = newServer().registerRaw('t.S', {
    Late: (_req, ctx) =>
      new Promise((resolve) => {
        setTimeout(() => {
          seen = { aborted: ctx.signal.aborted, code: (ctx.signal.reason as { code?: number })?.code };
          resolve(Buffer.alloc(0));
        }, 150);
      }),
  });
  await server.listen(p);
  const { frames } = await rawExchange(p, requestFrame(1, { service: 't.S', method: 'Late', timeout_nano: 30e6 }), 1);
  assert.is(decode(types().ttrpc.Response, frames[0].data).status.code, Code.DEADLINE_EXCEEDED);
  const deadline = Date.now() + 5000;
  while (!seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen, { aborted: true, code: Code.DEADLINE_EXCEEDED });
  await server.close();
});

test('server: a slow handler does not block a fast one on the same connection', async () => {
  const p = sock();
  const server = newServer().register(TASK, {
    Create: async () => {
      await sleep(300);
      return { pid: 1 };
    },
    State: () => ({ id: 'fast' }),
  });
  await server.listen(p);
  const c = await connect(p);
  const order: string[] = [];
  const slow = c.invoke(TASK, 'Create', { id: 'a' }).then(() => order.push('create'));
  await c.invoke(TASK, 'State', { id: 'a' }).then(() => order.push('state'));
  // State was answered while Create was still running (ordering, not timing).
  assert.equal(order, ['state'], 'State answered while Create runs');
  await slow;
  assert.equal(order, ['state', 'create']);
  c.close();
  await server.close();
});

test('server: an oversized frame drops only that connection', async () => {
  const p = sock();
  const server = newServer().register(TASK, { State: (r) => ({ id: r.id }) });
  await server.listen(p);
  const good = await connect(p);
  const head = Buffer.alloc(HEADER_LENGTH);
  head.writeUInt32BE(5 << 20, 0);
  head.writeUInt32BE(1, 4);
  head[8] = 1;
  const bad = await rawExchange(p, head, 1);
  assert.ok(bad.closed, 'server closed the offending connection');
  assert.is(bad.frames.length, 0);
  assert.is((await good.invoke(TASK, 'State', { id: 'still' })).id, 'still');
  const again = await connect(p);
  assert.is((await again.invoke(TASK, 'State', { id: 'new' })).id, 'new');
  good.close();
  again.close();
  await server.close();
});

test('server: listen can be retried after EADDRINUSE (a stale socket file removed)', async () => {
  const p = sock();
  fs.writeFileSync(p, '');
  const server = newServer().register(TASK, { State: (r) => ({ id: r.id }) });
  await server.listen(p).then(
    () => assert.unreachable('listen on an existing file'),
    (e) => assert.is((e as NodeJS.ErrnoException).code, 'EADDRINUSE'),
  );
  fs.rmSync(p);
  await server.listen(p);
  const c = await connect(p);
  assert.is((await c.invoke(TASK, 'State', { id: 'retried' })).id, 'retried');
  c.close();
  await server.close();
});

test('server: bad requests get InvalidArgument, the connection survives', async () => {
  const p = sock();
  const server = newServer().register(TASK, { State: () => ({ id: 'ok' }) });
  await server.listen(p);
  const garbage = encodeFrame(1, FrameType.REQUEST, Buffer.from([0x1a, 0x50, 0x01]) /* payload: 80 bytes announced, 1 sent */);
  const even = requestFrame(2, { service: TASK, method: 'State' });
  const ok = requestFrame(3, { service: TASK, method: 'State', payload: Buffer.alloc(0) });
  const { frames, closed } = await rawExchange(p, Buffer.concat([garbage, even, ok]), 3);
  assert.not.ok(closed);
  const codes = frames.map((f) => [f.streamId, decode(types().ttrpc.Response, f.data).status.code]);
  assert.equal(codes, [
    [1, Code.INVALID_ARGUMENT],
    [2, Code.INVALID_ARGUMENT],
    [3, Code.OK],
  ]);
  await server.close();
});

test('server: authorize() can refuse a connection; afterReply runs after the response', async () => {
  const p = sock();
  let allow = false;
  const events: string[] = [];
  const server = newServer({ ...quiet, authorize: () => allow }).register(TASK, {
    Shutdown: (_r, ctx) => {
      ctx.afterReply(() => events.push('after'));
      events.push('handler');
    },
  });
  await server.listen(p);
  const refused = await connect(p);
  await rejectsCode(refused.invoke(TASK, 'Shutdown', { id: 'a' }), Code.UNAVAILABLE);
  allow = true;
  const c = await connect(p);
  await c.invoke(TASK, 'Shutdown', { id: 'a', now: true });
  await sleep(10);
  assert.equal(events, ['handler', 'after']);
  c.close();
  await server.close();
});

test('events: Forward envelope with an Any-wrapped TaskExit decodes back', async () => {
  const when = new Date(1700000000500);
  const bytes = forwardRequest('default', 'TaskExit', { container_id: 'c1', id: 'c1', pid: 99, exit_status: 137, exited_at: timestamp(when) }, when);
  const fwd = decode(types().eventsService.ForwardRequest, bytes);
  assert.is(fwd.envelope.topic, '/tasks/exit');
  assert.is(fwd.envelope.namespace, 'default');
  assert.is(fromTimestamp(fwd.envelope.timestamp)!.getTime(), when.getTime());
  assert.is(fwd.envelope.event.type_url, 'containerd.events.TaskExit');
  const ev = unpackAny(fwd.envelope.event)!;
  assert.is(ev.kind, 'proto');
  assert.equal([ev.message!.container_id, ev.message!.id, ev.message!.pid, ev.message!.exit_status], ['c1', 'c1', 99, 137]);

  // The publisher delivers in order to a server playing containerd.
  const p = sock();
  const seen: string[] = [];
  let failOnce = true;
  const server = newServer().register(EVENTS_SERVICE, {
    Forward: async (req, ctx) => {
      if (failOnce) {
        failOnce = false;
        ctx.socket.destroy(); // the publisher must reconnect and resend
        return;
      }
      seen.push(`${req.envelope.topic} ${unpackAny(req.envelope.event)!.message!.container_id}`);
    },
  });
  await server.listen(p);
  const pub = new EventPublisher(p, quiet);
  await Promise.all([pub.publish('default', 'TaskExit', { container_id: 'a' }), pub.publish('default', 'TaskDelete', { container_id: 'a' })]);
  assert.equal(seen, ['/tasks/exit a', '/tasks/delete a']);
  pub.close();
  await server.close();
});

test('client: address forms and closed connections', async () => {
  assert.is(socketPath('unix:///run/x.sock'), '/run/x.sock');
  assert.is(socketPath('/run/x.sock'), '/run/x.sock');
  assert.throws(() => socketPath('tcp://1.2.3.4:5'), /unsupported address/);
  await rejectsCode(TtrpcClient.connect(path.join(dir, 'missing.sock')), Code.UNAVAILABLE);
  const p = sock();
  const server = newServer().registerRaw('t.S', { Hang: () => new Promise(() => {}) });
  await server.listen(p);
  const c = await connect(p);
  const hung = c.call('t.S', 'Hang', Buffer.alloc(0));
  await sleep(20);
  await server.close();
  await rejectsCode(hung, Code.UNAVAILABLE);
  assert.ok(c.closed);
});

test.after(async () => {
  for (const o of open) await o.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
