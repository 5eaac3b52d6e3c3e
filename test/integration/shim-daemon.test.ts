/*
 * containerd-shim-shoal-v2 end to end without containerd: the C launcher's `start` spawns the
 * daemon, a second container of the same group gets the same address on the launcher's fast
 * path, a ttrpc client drives Create/Start/Wait/Delete/Shutdown as containerd would, and the
 * `delete` action cleans up after a killed shim.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import * as net from 'net';
import { repoRoot } from '../../shim/src/native';
import { readElf } from '../../shim/src/gen/elf';
import { TtrpcClient } from '../../shim/src/ttrpc/client';
import { decode, types } from '../../shim/src/ttrpc/proto';
import { canConnect } from '../../shim/src/task/cleanup';
import { makeBundle } from '../lib/rootfs';
import { alive, cgroupsOf, processesOf, uniqueId, withCleanup, Defer } from '../lib/shoal';

const LAUNCHER = path.join(repoRoot(), 'build', 'Release', 'containerd-shim-shoal-v2');
const TASK = 'containerd.task.v2.Task';
const NS = 'shoaltest';

interface Env {
  grpc: string;
  stateRoot: string;
  env: NodeJS.ProcessEnv;
}

/** The shims of these tests end at Shutdown (SHOAL_SHIM_LINGER=0; shim-linger.test covers the linger). */
function environment(defer: Defer): Env {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shimd-'));
  defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stateRoot = path.join(dir, 'state');
  return { grpc: path.join(dir, 'containerd.sock'), stateRoot, env: { PATH: process.env.PATH, SHOAL_SHIM_STATE_ROOT: stateRoot, NAMESPACE: NS, SHOAL_SHIM_LINGER: '0' } };
}

function shim(e: Env, id: string, bundle: string, action: string, extra: string[] = []): { code: number; stdout: Buffer; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(LAUNCHER, ['-namespace', NS, '-address', e.grpc, '-publish-binary', '/bin/true', '-id', id, ...extra, action], {
    cwd: bundle, env: e.env, input: Buffer.from([0x0a, 0x00]), timeout: 30_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString(), ms: Date.now() - t0 };
}

async function startShim(e: Env, id: string, bundle: string, defer: Defer): Promise<{ address: string; client: TtrpcClient }> {
  const r = shim(e, id, bundle, 'start');
  assert.is(r.code, 0, r.stderr);
  const address = r.stdout.toString();
  assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
  const client = await TtrpcClient.connect(address);
  defer(async () => {
    // Make sure the daemon is gone whatever happened.
    try {
      const { shim_pid } = await client.invoke(TASK, 'Connect', { id });
      await client.invoke(TASK, 'Shutdown', { id, now: true }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      try {
        process.kill(shim_pid, 9);
      } catch {
        // exited
      }
    } catch {
      // already gone
    }
    client.close();
    // A daemon killed above leaves its socket and start lock behind: no test leaves them.
    const sock = address.slice('unix://'.length);
    for (const f of [sock, `${sock}.lock`]) fs.rmSync(f, { force: true });
  });
  return { address, client };
}

/**
 * A daemon with one created container (`sleep 100`, started when `start` is set), SIGKILLed: what
 * containerd is left with before it runs the launcher's `delete`.
 */
async function killedShim(defer: Defer, prefix: string, start = false): Promise<{ e: Env; id: string; bundle: string; address: string; pid: number }> {
  const e = environment(defer);
  const id = uniqueId(prefix);
  const bundle = makeBundle({ process: { args: ['sleep', '100'] } });
  defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
  const { address, client } = await startShim(e, id, bundle, defer);
  const { pid } = await client.invoke(TASK, 'Create', { id, bundle });
  if (start) await client.invoke(TASK, 'Start', { id });
  const { shim_pid } = await client.invoke(TASK, 'Connect', { id });
  process.kill(shim_pid, 9);
  while (alive(shim_pid)) await new Promise((r) => setTimeout(r, 20));
  return { e, id, bundle, address, pid };
}

test('the launcher is linked statically: containerd execs it for every start and delete', () => {
  // A dynamic one costs about 0.2 ms more per exec here (ld.so and libc's relocations).
  const e = readElf(LAUNCHER);
  assert.ok(e, `${LAUNCHER} is an ELF executable`);
  assert.is(e!.interp, undefined, `no program interpreter (PT_INTERP ${e!.interp})`);
  assert.equal(e!.needed, []);
});

test('start, grouping fast path, Create/Start/Wait/Delete over ttrpc, Shutdown', () =>
  withCleanup(async (defer) => {
    const e = environment(defer);
    const id = uniqueId('shimd');
    const bundle = makeBundle({ process: { args: ['sh', '-c', 'echo from-shim; exit 7'] } });
    defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
    const { address, client } = await startShim(e, id, bundle, defer);
    const sock = address.slice('unix://'.length);
    assert.is(fs.statSync(sock).mode & 0o777, 0o600);
    assert.is(fs.readFileSync(path.join(bundle, 'address'), 'utf8'), address);

    // A second container of the same group (by default: the namespace) is answered by the C
    // fast path, with the same address.
    const bundle2 = makeBundle();
    defer(() => fs.rmSync(bundle2, { recursive: true, force: true }));
    const again = shim({ ...e, env: { ...e.env, SHOAL_NODE: '/bin/false' } }, uniqueId('shimd2'), bundle2, 'start');
    assert.is(again.code, 0, again.stderr);
    assert.is(again.stdout.toString(), address);
    // containerd reconnects after a restart through each bundle's address file.
    assert.is(fs.readFileSync(path.join(bundle2, 'address'), 'utf8'), address, 'the fast path writes the address file');

    const log = path.join(bundle, 'out.log');
    const { pid } = await client.invoke(TASK, 'Create', { id, bundle, stdout: `file://${log}`, stderr: `file://${log}` });
    assert.ok(pid > 0);
    const conn = await client.invoke(TASK, 'Connect', { id });
    assert.is(conn.task_pid, pid);
    assert.is.not(conn.shim_pid, process.pid);
    // The launcher started the daemon with the build's V8 flags, in a session of its own.
    const argv = fs.readFileSync(`/proc/${conn.shim_pid}/cmdline`, 'utf8').split('\0');
    const flags = fs.readFileSync(path.join(repoRoot(), 'build', 'shim-daemon.flags'), 'utf8').trim().split(' ');
    assert.equal(argv.slice(1, 1 + flags.length), flags);
    assert.equal(argv.slice(-4, -1), ['-socket', sock, 'serve']);
    const stat = fs.readFileSync(`/proc/${conn.shim_pid}/stat`, 'utf8').split(') ')[1].split(' ');
    assert.is(Number(stat[3]), conn.shim_pid, 'session leader');
    assert.is((await client.invoke(TASK, 'State', { id })).status, 1);
    await client.invoke(TASK, 'Start', { id });
    const w = await client.invoke(TASK, 'Wait', { id });
    assert.is(w.exit_status, 7);
    assert.is(fs.readFileSync(log, 'utf8'), 'from-shim\n');
    try {
      await client.invoke(TASK, 'Start', { id });
      assert.unreachable();
    } catch (err) {
      assert.is((err as { code: number }).code, 9, 'FailedPrecondition');
      assert.match((err as Error).message, /cannot start task in stopped state/);
    }
    const d = await client.invoke(TASK, 'Delete', { id });
    assert.is(d.exit_status, 7);
    assert.not.ok(fs.existsSync(path.join(e.stateRoot, NS, id)));

    // containerd 1.6 runs `delete` after every Delete (its connection's close handler): with
    // nothing left to clean and the shim alive, the launcher answers it without Node
    // (SHOAL_NODE=/bin/false would fail), as the full cleanup would answer.
    const noNode = { ...e, env: { ...e.env, SHOAL_NODE: '/bin/false' } };
    const fast = shim(noNode, id, bundle, 'delete', ['-bundle', bundle]);
    assert.is(fast.code, 0, fast.stderr);
    const resp = decode(types().task.DeleteResponse, fast.stdout);
    assert.is(resp.pid, 0);
    assert.is(resp.exit_status, 137);
    assert.ok(Math.abs(Number(resp.exited_at.seconds) - Date.now() / 1000) < 60, 'exited_at is now');
    // Anything left (here an init.pid) goes to Node's full cleanup.
    fs.writeFileSync(path.join(bundle, 'init.pid'), String(pid));
    assert.is.not(shim(noNode, id, bundle, 'delete', ['-bundle', bundle]).code, 0, 'init.pid left: not the fast path');
    fs.rmSync(path.join(bundle, 'init.pid'));
    await client.invoke(TASK, 'Shutdown', { id });
    const deadline = Date.now() + 5000;
    while (fs.existsSync(sock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(fs.existsSync(sock), 'the daemon exited and removed its socket');
    // The lock goes last, once the daemon's pending events are out (daemon.ts onShutdown).
    while (fs.existsSync(`${sock}.lock`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.not.ok(fs.existsSync(`${sock}.lock`), 'and the start lock');

    // The `delete` after the last container's Shutdown: the daemon is gone, still no Node; a
    // socket file nobody answers on (a killed daemon's) is removed as the full cleanup would.
    const afterExit = shim(noNode, id, bundle, 'delete', ['-bundle', bundle]);
    assert.is(afterExit.code, 0, afterExit.stderr);
    assert.is(decode(types().task.DeleteResponse, afterExit.stdout).exit_status, 137);
    const stale = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.is(stale.signal, 'SIGKILL');
    assert.ok(fs.existsSync(sock), 'a stale socket file');
    assert.is(shim(noNode, id, bundle, 'delete', ['-bundle', bundle]).code, 0);
    assert.not.ok(fs.existsSync(sock), 'the stale socket was removed');
  }));

test('concurrent cold starts of one group start one daemon', () =>
  withCleanup(async (defer) => {
    const e0 = environment(defer);
    // Every daemon that starts (also one that loses the socket and exits) traces "serve: loaded".
    const traceFile = path.join(path.dirname(e0.stateRoot), 'trace');
    const e = { ...e0, env: { ...e0.env, SHOAL_TRACE: traceFile } };
    const bundles = Array.from({ length: 6 }, () => makeBundle());
    defer(() => bundles.forEach((b) => fs.rmSync(b, { recursive: true, force: true })));
    const { spawn } = await import('child_process');
    const ids = bundles.map(() => uniqueId('shimc'));
    const outs = await Promise.all(
      bundles.map(
        (b, i) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const c = spawn(LAUNCHER, ['-namespace', NS, '-address', e.grpc, '-publish-binary', '/bin/true', '-id', ids[i], 'start'], { cwd: b, env: e.env });
            let out = '';
            c.stdout.on('data', (d) => (out += d));
            c.stdin.end(Buffer.from([0x0a, 0x00]));
            c.on('close', (code) => resolve({ code, out })); // 'close': after stdout was read to its end
          }),
      ),
    );
    const sock = outs[0].out.slice('unix://'.length);
    const daemonsOf = () =>
      fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return argv.includes('serve') && argv.includes(sock);
        } catch {
          return false;
        }
      });
    // Whatever fails below, no daemon outlives the test, nor its socket and start lock.
    defer(() => {
      daemonsOf().forEach((p) => process.kill(Number(p), 'SIGKILL'));
      for (const f of [sock, `${sock}.lock`]) fs.rmSync(f, { force: true });
    });
    for (const o of outs) assert.is(o.code, 0);
    assert.is(new Set(outs.map((o) => o.out)).size, 1, 'one address');
    const daemons = daemonsOf();
    assert.is(daemons.length, 1, `one daemon: ${daemons}`);
    const started = fs.readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.includes('shim serve: loaded'));
    assert.is(started.length, 1, 'only one daemon was ever started');
    const client = await TtrpcClient.connect(outs[0].out);
    try {
      await client.invoke(TASK, 'Shutdown', { id: ids[0] });
    } finally {
      client.close();
    }
    const deadline = Date.now() + 5000;
    while ((fs.existsSync(sock) || fs.existsSync(`${sock}.lock`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(fs.existsSync(`${sock}.lock`), 'the daemon removed the start lock');
  }));

test('delete after the shim was killed: force-kills the container, prints DeleteResponse', () =>
  withCleanup(async (defer) => {
    const { e, id, bundle, pid } = await killedShim(defer, 'shimd', true);
    const r = shim(e, id, bundle, 'delete', ['-bundle', bundle]);
    assert.is(r.code, 0, r.stderr);
    const resp = decode(types().task.DeleteResponse, r.stdout);
    assert.is(resp.pid, pid);
    assert.is(resp.exit_status, 137);
    assert.ok(Number(resp.exited_at.seconds) > 0);
    assert.not.ok(fs.existsSync(path.join(e.stateRoot, NS, id)), 'state removed');
    const sock = fs.readFileSync(path.join(bundle, 'address'), 'utf8').slice('unix://'.length);
    assert.not.ok(fs.existsSync(sock), "the dead shim's socket is removed");
    assert.not.ok(fs.existsSync(`${sock}.lock`), 'and its start lock');
    assert.not.ok(alive(pid), 'container init killed');
  }));

for (const [stage, hostSide] of [['createRuntime', true], ['createContainer', false]] as const) {
  test(`the daemon SIGKILLed during a Create, in its ${stage} hook: \`delete\` leaves no state, cgroup or process`, () =>
    withCleanup(async (defer) => {
      const e = environment(defer);
      const id = uniqueId('shimk');
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shimk-'));
      defer(() => fs.rmSync(work, { recursive: true, force: true }));
      // The hook says that it runs (a runtime-side one also its pid: it outlives the daemon, and
      // the test ends it), then blocks.
      const record = hostSide ? `echo $$ > ${work}/hook.pid; ` : '';
      const hook = { path: '/bin/sh', args: ['sh', '-c', `${record}touch ${work}/started; exec sleep 120`] };
      const bundle = makeBundle({ process: { args: ['sleep', '100'] }, hooks: { [stage]: [hook] } });
      defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
      if (!hostSide) {
        // A container-side hook sees the container's mounts: the work dir is bound in.
        fs.mkdirSync(path.join(bundle, 'rootfs', work.slice(1)), { recursive: true });
        const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
        cfg.mounts.push({ destination: work, type: 'bind', source: work, options: ['rbind', 'rw'] });
        fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
      }
      defer(() => {
        try {
          process.kill(Number(fs.readFileSync(path.join(work, 'hook.pid'), 'utf8')), 'SIGKILL');
        } catch {
          // none, or gone
        }
      });
      const { client } = await startShim(e, id, bundle, defer);
      const created = client.invoke(TASK, 'Create', { id, bundle }).then(() => 'created', (err: Error) => `failed: ${err.message}`);
      while (!fs.existsSync(path.join(work, 'started'))) await new Promise((r) => setTimeout(r, 20));
      const { shim_pid } = await client.invoke(TASK, 'Connect', { id });
      assert.ok(cgroupsOf(id) !== '', 'the cgroup exists at this stage');
      assert.ok(processesOf(id).length > 0, 'so does the init');
      process.kill(shim_pid, 'SIGKILL');
      assert.match(await created, /^failed/, 'the Create was cut');
      // What containerd runs once the shim's connection drops.
      const r = shim(e, id, bundle, 'delete', ['-bundle', bundle]);
      assert.is(r.code, 0, r.stderr);
      assert.not.ok(fs.existsSync(path.join(e.stateRoot, NS, id)), 'no state');
      assert.is(cgroupsOf(id), '', 'no cgroup');
      const deadline = Date.now() + 5000;
      while (processesOf(id).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(processesOf(id), [], 'no process of the container');
    }));
}

test("`delete` after a killed shim waits for the group's start lock and keeps the next daemon's socket", () =>
  withCleanup(async (defer) => {
    const { e, id, bundle, address } = await killedShim(defer, 'shimr');
    const sock = address.slice('unix://'.length);
    // A `start` of the group's next container holds the start lock while its daemon comes up
    // (here: flock(1) holds it until the gate opens, and the test stands in for the daemon).
    const gate = path.join(path.dirname(e.stateRoot), 'gate');
    const ready = `${gate}.ready`;
    const holder = spawn('flock', [`${sock}.lock`, 'sh', '-c', `touch ${ready}; i=0; while [ ! -e ${gate} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done`], { stdio: 'ignore' });
    defer(() => void holder.kill('SIGKILL'));
    const held = new Promise((r) => holder.on('exit', r));
    while (!fs.existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
    // containerd's `delete` for the dead shim's container, meanwhile.
    const del = spawn(LAUNCHER, ['-namespace', NS, '-address', e.grpc, '-publish-binary', '/bin/true', '-id', id, '-bundle', bundle, 'delete'], { cwd: bundle, env: e.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let delErr = '';
    del.stderr!.on('data', (d) => (delErr += d));
    const deleted = new Promise<number>((r) => del.on('exit', (code) => r(code ?? -1)));
    // The next daemon replaces the stale socket and listens, still under the lock.
    fs.rmSync(sock, { force: true });
    const next = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => next.listen(sock, () => r()));
    defer(() => new Promise<void>((r) => next.close(() => r())));
    await new Promise((r) => setTimeout(r, 300));
    assert.is(del.exitCode, null, '`delete` waits for the start lock');
    fs.writeFileSync(gate, '');
    await held;
    assert.is(await deleted, 0, delErr);
    assert.ok(fs.existsSync(sock), "the next daemon's socket is kept");
    assert.ok(await canConnect(sock), 'and it still accepts');
    assert.not.ok(fs.existsSync(path.join(e.stateRoot, NS, id)), "the dead shim's container is cleaned up");
  }));

test('a slow Create (createRuntime hook) never delays State and Kill of another container', () =>
  withCleanup(async (defer) => {
    const e = environment(defer);
    const gate = path.join(os.tmpdir(), `shoal-gate-${process.pid}-${Date.now()}`);
    const entered = `${gate}.entered`;
    defer(() => [gate, entered].forEach((f) => fs.rmSync(f, { force: true })));
    const group = { 'io.containerd.runc.v2.group': uniqueId('grp') };
    const fast = uniqueId('fast');
    const fastBundle = makeBundle({ annotations: group, process: { args: ['sleep', '100'] } });
    defer(() => fs.rmSync(fastBundle, { recursive: true, force: true }));
    // The hook waits (at most 10 s) for the test to open the gate: ordering, not timing.
    const hook = { path: '/bin/sh', args: ['sh', '-c', `touch ${entered}; i=0; while [ ! -e ${gate} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`] };
    const slow = uniqueId('slow');
    const slowBundle = makeBundle({ annotations: group, process: { args: ['sleep', '100'] }, hooks: { createRuntime: [hook] } });
    defer(() => fs.rmSync(slowBundle, { recursive: true, force: true }));
    const { client } = await startShim(e, fast, fastBundle, defer);
    defer(async () => {
      // Runs before the shim is shut down (defers run last first), pass or fail.
      for (const id of [fast, slow]) {
        await client.invoke(TASK, 'Kill', { id, signal: 9 }).catch(() => undefined);
        await client.invoke(TASK, 'Wait', { id }).catch(() => undefined);
        await client.invoke(TASK, 'Delete', { id }).catch(() => undefined);
      }
    });
    await client.invoke(TASK, 'Create', { id: fast, bundle: fastBundle });
    await client.invoke(TASK, 'Start', { id: fast });
    const order: string[] = [];
    const creating = client.invoke(TASK, 'Create', { id: slow, bundle: slowBundle }).then(
      () => order.push('slow created'),
      (err) => order.push(`slow create failed: ${err.message}`),
    );
    while (!fs.existsSync(entered)) await new Promise((r) => setTimeout(r, 20));
    // The slow Create is provably in its hook now (it cannot finish before the gate opens).
    // The 5 s deadlines only turn a blocked shim into a failure instead of a hang.
    try {
      order.push(`state ${(await client.invoke(TASK, 'State', { id: fast }, { timeoutMs: 5000 })).status}`);
      await client.invoke(TASK, 'Kill', { id: fast, signal: 9 }, { timeoutMs: 5000 });
      order.push(`exit ${(await client.invoke(TASK, 'Wait', { id: fast }, { timeoutMs: 5000 })).exit_status}`);
    } catch (err) {
      order.push(`blocked: ${(err as Error).message}`);
    }
    fs.writeFileSync(gate, '');
    await creating;
    assert.equal(order, ['state 2', 'exit 137', 'slow created']);
  }));

test('-v prints the version', () => {
  const r = spawnSync(LAUNCHER, ['-v'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /containerd-shim-shoal-v2:\n\s+Version:\s+\d+\.\d+\.\d+/);
});

test.run();
