/*
 * containerd-shim-shoal-v2 under real containerd 1.6 when things go wrong: containerd restarts
 * (it reconnects to the running shim), the shim is SIGKILLed (containerd cleans up through the
 * shim binary's `delete` action), garbage on the shim's socket, a slow Create next to a busy
 * container, and the shim exiting once the last container was deleted. Assertions are about
 * ordering and end states, never about durations.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn } from 'child_process';
import { Containerd } from '../lib/daemons';
import { alive, bundleOf, ok, ready, ShimContainerd, SHIM_RUNTIME, shimPid, shimSocket, startShimContainerd, taskStatuses, waitFor } from '../lib/shim-env';
import { TtrpcClient } from '../../shim/src/ttrpc/client';

const RUNTIME = SHIM_RUNTIME;
const TASK = 'containerd.task.v2.Task';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let env: ShimContainerd | undefined;
let containerdPid = 0;
let image = '';

test.before(async () => {
  env = await startShimContainerd(`shoal-rob-${process.pid}`);
  image = env.image;
  containerdPid = env.cd?.pid ?? 0;
});

test.after(async () => {
  await env?.cd?.stop().catch(() => undefined);
});

/** Task status by id; `ctr tasks ls` must succeed. */
function tasks(c: Containerd): Map<string, string> {
  ok(c.ctr(['tasks', 'ls']), 'tasks ls');
  return taskStatuses(c);
}

/** SIGTERM containerd, wait until it is gone, start it again with the same config and state. */
async function restartContainerd(c: Containerd): Promise<void> {
  process.kill(containerdPid, 'SIGTERM');
  await waitFor('containerd exited', () => !alive(containerdPid));
  const child = c.sandbox.spawnDaemon('containerd', 'containerd', ['--config', path.join(c.sandbox.dir, 'containerd.toml')]);
  containerdPid = child.pid!;
  await waitFor('containerd answers again', () => c.ctr(['version'], { timeoutMs: 5000 }).code === 0, 30_000);
}

function run(c: Containerd, id: string, args: string[] = ['sleep', '1000'], extra: string[] = []): void {
  ok(c.ctr(['run', '--runtime', RUNTIME, '-d', ...extra, image, id, ...args]), `run ${id}`);
}

async function removeAll(c: Containerd, ids: string[]): Promise<void> {
  for (const id of ids) {
    c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
    await waitFor(`${id} stopped`, () => tasks(c).get(id) !== 'RUNNING', 10_000).catch(() => undefined);
    c.ctr(['tasks', 'delete', '-f', id]);
    c.ctr(['containers', 'delete', id]);
  }
}

test('containerd restarts: it reconnects to the shim, the containers are intact', async () => {
  const c = ready(env);
  if (!c) return;
  const ids = [`r-a-${process.pid}`, `r-b-${process.pid}`];
  const before = c.snapshot();
  try {
    for (const id of ids) run(c, id);
    await waitFor('running', () => ids.every((id) => tasks(c).get(id) === 'RUNNING'));
    const shim = await shimPid(c, ids[0]);
    await restartContainerd(c);
    assert.ok(alive(shim), 'the shim outlived containerd');
    const t = tasks(c);
    for (const id of ids) assert.is(t.get(id), 'RUNNING', `${id} after the restart`);
    assert.is(ok(c.ctr(['tasks', 'exec', '--exec-id', 'after', ids[0], 'echo', 'still-here']), 'exec after restart'), 'still-here');
    ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', ids[1]]), 'kill after restart');
    await waitFor('stopped', () => tasks(c).get(ids[1]) === 'STOPPED');
    ok(c.ctr(['tasks', 'delete', ids[1]]), 'delete after restart');
    assert.is(await shimPid(c, ids[0]), shim, 'the same shim serves the group');
  } finally {
    await removeAll(c, ids);
  }
  assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
});

test('the shim SIGKILLed: containerd cleans up through `delete`, nothing leaks', async () => {
  const c = ready(env);
  if (!c) return;
  const id = `r-kill-${process.pid}`;
  const before = c.snapshot();
  try {
    run(c, id);
    await waitFor('running', () => tasks(c).get(id) === 'RUNNING');
    const shim = await shimPid(c, id);
    const pids = ok(c.ctr(['tasks', 'ps', id]), 'ps').split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    process.kill(shim, 'SIGKILL');
    // containerd sees the connection drop, runs `containerd-shim-shoal-v2 ... delete`, which
    // kills the container, and publishes its exit: the task is then gone or stopped.
    await waitFor('the task is no longer running', () => tasks(c).get(id) !== 'RUNNING');
    await waitFor('the container processes are gone', () => !pids.some(alive));
    const del = c.ctr(['tasks', 'delete', id]);
    assert.ok(del.code === 0 || /not found/.test(del.stderr), `tasks delete: ${del.stderr}`);
    ok(c.ctr(['containers', 'delete', id]), 'containers delete');
  } finally {
    await removeAll(c, [id]);
  }
  assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
});

/** Writes `bytes` on a new connection to the shim; resolves with what happened to it. */
function poke(sock: string, bytes: Buffer): Promise<{ closed: boolean; reply: Buffer }> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    let reply = Buffer.alloc(0);
    const t = setTimeout(() => (s.destroy(), resolve({ closed: false, reply })), 3000);
    s.on('data', (d) => (reply = Buffer.concat([reply, d])));
    s.on('close', () => (clearTimeout(t), resolve({ closed: true, reply })));
    s.on('error', () => undefined);
    s.on('connect', () => s.write(bytes));
  });
}

function header(length: number, stream: number, type: number): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(stream, 4);
  h[8] = type;
  return h;
}

test('malformed and oversized frames drop that connection only; the shim keeps serving', async () => {
  const c = ready(env);
  if (!c) return;
  const id = `r-frame-${process.pid}`;
  try {
    run(c, id);
    await waitFor('running', () => tasks(c).get(id) === 'RUNNING');
    const sock = shimSocket(c, id);
    const oversized = await poke(sock, header(64 << 20, 1, 1));
    assert.ok(oversized.closed, 'a 64 MiB length closes the connection');
    const badType = await poke(sock, Buffer.concat([header(3, 1, 9), Buffer.from('abc')]));
    assert.ok(badType.closed, 'an unknown frame type closes the connection');
    // A well-framed request whose protobuf is garbage gets an error response, not a crash.
    const garbage = await poke(sock, Buffer.concat([header(4, 1, 1), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
    assert.ok(garbage.reply.length >= 10, 'a response frame to an undecodable request');
    const client = await TtrpcClient.connect(sock);
    try {
      assert.is((await client.invoke(TASK, 'State', { id })).status, 2, 'State still answers');
    } finally {
      client.close();
    }
    assert.is(tasks(c).get(id), 'RUNNING');
  } finally {
    await removeAll(c, [id]);
  }
});

test('a slow Create (logging binary not ready) never delays ls, exec and kill of another container', async () => {
  const c = ready(env);
  if (!c) return;
  const busy = `r-busy-${process.pid}`;
  const slow = `r-slow-${process.pid}`;
  const dir = fs.mkdtempSync('/tmp/shoal-rob-');
  const logger = path.join(dir, 'logger.sh');
  // Not ready (fd 5 open) until the test opens the gate: ordering, not timing. Bounded at 30 s.
  fs.writeFileSync(logger, `#!/bin/sh\ntouch ${dir}/entered\ni=0\nwhile [ ! -e ${dir}/gate ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexec 5>&-\nexec cat <&3 >/dev/null\n`, { mode: 0o755 });
  const before = c.snapshot();
  try {
    run(c, busy);
    await waitFor('running', () => tasks(c).get(busy) === 'RUNNING');
    const [nsenter, ...pre] = c.sandbox.nsenterArgs();
    const slowRun = spawn(nsenter, [...pre, 'ctr', '-a', c.sock, '-n', c.namespace, 'run', '--runtime', RUNTIME, '-d', '--log-uri', `binary://${logger}`, image, slow, 'sleep', '1000'], { stdio: 'ignore' });
    const slowDone = new Promise<number>((r) => slowRun.on('exit', (code) => r(code ?? -1)));
    await waitFor('the slow Create reached its logger', () => fs.existsSync(path.join(dir, 'entered')));
    assert.is(tasks(c).get(busy), 'RUNNING', 'ls answers during the slow Create');
    assert.is(ok(c.ctr(['tasks', 'exec', '--exec-id', 'during', busy, 'echo', 'served']), 'exec during the slow Create'), 'served');
    ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', busy]), 'kill during the slow Create');
    await waitFor('busy stopped', () => tasks(c).get(busy) === 'STOPPED');
    assert.is(slowRun.exitCode, null, 'the slow Create is still waiting');
    fs.writeFileSync(path.join(dir, 'gate'), '');
    assert.is(await slowDone, 0, 'the slow run completes once the logger is ready');
    await waitFor('slow running', () => tasks(c).get(slow) === 'RUNNING');
  } finally {
    fs.writeFileSync(path.join(dir, 'gate'), '');
    await removeAll(c, [busy, slow]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
});

test('the shim exits and removes its socket once its last container was deleted', async () => {
  const c = ready(env);
  if (!c) return;
  const id = `r-last-${process.pid}`;
  run(c, id);
  await waitFor('running', () => tasks(c).get(id) === 'RUNNING');
  const sock = shimSocket(c, id);
  const shim = await shimPid(c, id);
  await removeAll(c, [id]);
  await waitFor('the shim exited', () => !alive(shim));
  assert.not.ok(fs.existsSync(sock), 'socket removed');
});

test.run();
