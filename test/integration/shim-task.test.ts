/*
 * The shim's Task service in-process on real busybox containers (as root): Create/Start/Wait/
 * Kill/Delete through the plain-object service, fifo/file/stdin IO, exec, a terminal with
 * ResizePty, rootfs mounts, and the state machine's errors. The test process is the child
 * subreaper the inits are re-parented to, as the shim daemon is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { StateStore } from '../../shim/src/runtime/state';
import { containerCgroupOptions } from '../../shim/src/runtime/create';
import { createCgroup } from '../../shim/src/runtime/cgroup/manager';
import { cleanupDeadShim } from '../../shim/src/task/cleanup';
import { native } from '../../shim/src/native';
import { TaskService, Msg } from '../../shim/src/task/service';
import { startOrphanReaper } from '../../shim/src/task/reaper';
import { makeBundle, BundleOverrides } from '../lib/rootfs';
import { uniqueId, withCleanup, Defer } from '../lib/shoal';

native().setChildSubreaper(true);

const ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** A fifo with a reader opened the way containerd does (before Create, non-blocking). */
class Fifo {
  readonly path: string;
  private fd: number;
  constructor(dir: string, name: string) {
    this.path = path.join(dir, name);
    execFileSync('mkfifo', [this.path]);
    this.fd = fs.openSync(this.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  }
  /** Everything written until every writer closed (call once a writer exists). */
  readAll(timeoutMs = 10_000): Promise<string> {
    const s = new net.Socket({ fd: this.fd, readable: true, writable: false });
    let out = '';
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => (s.destroy(), reject(new Error(`fifo ${this.path}: no EOF; got ${JSON.stringify(out)}`))), timeoutMs);
      s.setEncoding('utf8');
      s.on('data', (d) => (out += d));
      s.on('end', () => (clearTimeout(t), s.destroy(), resolve(out)));
    });
  }
}

function setup(defer: Defer, overrides: BundleOverrides): { svc: TaskService; bundle: string; id: string; dir: string; root: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shim-io-'));
  defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bundle = makeBundle(overrides);
  defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shim-root-'));
  defer(() => fs.rmSync(root, { recursive: true, force: true }));
  const svc = new TaskService({ namespace: 'test', stateRoot: root, reapOrphans: false, warn: () => undefined });
  const id = uniqueId('shim');
  defer(async () => {
    // Whatever the test reached: kill and delete, then check nothing is left.
    if (svc.containers.has(id)) {
      await svc.Kill({ id, signal: 9, all: true }).catch(() => undefined);
      await svc.Wait({ id }).catch(() => undefined);
      await svc.Delete({ id }).catch(() => undefined);
    }
    svc.close();
    assert.not.ok(fs.existsSync(path.join(root, id)), 'state dir removed');
  });
  return { svc, bundle, id, dir, root };
}

async function expectError(p: Promise<unknown>, code: string, msg: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.is((e as { code: string }).code, code);
    assert.match((e as Error).message, msg);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('create, start, wait, delete with stdout and stderr fifos', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, dir, root } = setup(defer, { process: { args: ['sh', '-c', 'echo out; echo err >&2; exit 3'] } });
    const out = new Fifo(dir, 'stdout'), err = new Fifo(dir, 'stderr');
    const { pid } = await svc.Create({ id, bundle, stdout: out.path, stderr: err.path });
    assert.ok(pid > 0);
    assert.is((await svc.State({ id })).status, 1, 'CREATED');
    assert.not.ok(fs.existsSync(path.join(bundle, 'init.pid')), 'no init.pid (the state has the pid)');
    // Held until Start on its helper's channel: no exec.fifo, the state written once as created.
    assert.not.ok(fs.existsSync(path.join(root, id, 'exec.fifo')), 'no exec.fifo');
    const saved = JSON.parse(fs.readFileSync(path.join(root, id, 'state.json'), 'utf8'));
    assert.is(saved.phase, 'created');
    assert.is(saved.pid, pid);
    assert.is(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'shoal:[init]', 'waits before its exec');
    const outText = out.readAll(), errText = err.readAll();
    assert.is((await svc.Start({ id })).pid, pid);
    const w = await svc.Wait({ id });
    assert.is(w.exit_status, 3);
    assert.is(await outText, 'out\n');
    assert.is(await errText, 'err\n');
    const st = await svc.State({ id });
    assert.is(st.status, 3, 'STOPPED');
    assert.is(st.exit_status, 3);
    await expectError(svc.Start({ id }), 'INVALID_STATE', /cannot start task in stopped state/);
    await expectError(svc.Kill({ id, signal: 9 }), 'NOT_FOUND', /process already finished/);
    const d = await svc.Delete({ id });
    assert.is(d.exit_status, 3);
    assert.is(d.pid, pid);
    assert.not.ok(svc.containers.has(id));
    assert.not.ok(fs.existsSync(path.join(root, id)));
    await expectError(svc.State({ id }), 'NOT_FOUND', /not found/);
  }));

test('kill a running container: 128+signal; Pids; pause and resume', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['sleep', '100'] } });
    const events: string[] = [];
    (svc as unknown as { opts: { publish: (t: string) => void } }).opts.publish = (t) => events.push(t);
    const { pid } = await svc.Create({ id, bundle });
    await svc.Start({ id });
    await expectError(svc.Start({ id }), 'INVALID_STATE', /cannot start task in running state/);
    await expectError(svc.Delete({ id }), 'INVALID_STATE', /cannot delete task in running state/);
    assert.equal((await svc.Pids({ id })).processes.map((p: Msg) => p.pid), [pid]);
    await svc.Pause({ id });
    assert.is((await svc.State({ id })).status, 4, 'PAUSED');
    await svc.Resume({ id });
    assert.is((await svc.State({ id })).status, 2, 'RUNNING');
    await svc.Kill({ id, signal: 9 });
    assert.is((await svc.Wait({ id })).exit_status, 137);
    await svc.Delete({ id });
    assert.equal(events, ['/tasks/create', '/tasks/start', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete']);
  }));

test('exec with file:// output, stdin through CloseIO', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, dir } = setup(defer, { process: { args: ['sleep', '100'] } });
    await svc.Create({ id, bundle });
    await svc.Start({ id });
    const log = path.join(dir, 'logs', 'exec.log');
    const spec = { args: ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 5'], cwd: '/', env: ENV, user: { uid: 0, gid: 0 } };
    await svc.Exec({ id, exec_id: 'e1', stdout: `file://${log}`, stderr: `file://${log}`, spec: { type_url: 'x', value: Buffer.from(JSON.stringify(spec)) } });
    await expectError(svc.Exec({ id, exec_id: 'e1', spec: { value: Buffer.from(JSON.stringify(spec)) } }), 'ALREADY_EXISTS', /already exists/);
    assert.is((await svc.State({ id, exec_id: 'e1' })).status, 1);
    const { pid } = await svc.Start({ id, exec_id: 'e1' });
    assert.ok(pid > 0);
    assert.is((await svc.Wait({ id, exec_id: 'e1' })).exit_status, 5);
    assert.is(fs.readFileSync(log, 'utf8'), 'exec-out\nexec-err\n');
    assert.is((await svc.Delete({ id, exec_id: 'e1' })).exit_status, 5);
    await expectError(svc.State({ id, exec_id: 'e1' }), 'NOT_FOUND', /does not exist/);

    // cat echoes stdin until CloseIO.
    const stdin = path.join(dir, 'in');
    execFileSync('mkfifo', [stdin]);
    const out = new Fifo(dir, 'cat-out');
    const catSpec = { args: ['cat'], cwd: '/', env: ENV, user: { uid: 0, gid: 0 } };
    await svc.Exec({ id, exec_id: 'cat', stdin, stdout: out.path, spec: { value: Buffer.from(JSON.stringify(catSpec)) } });
    await svc.Start({ id, exec_id: 'cat' });
    const text = out.readAll();
    const w = fs.openSync(stdin, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fs.writeSync(w, 'ping\n');
    fs.closeSync(w);
    await new Promise((r) => setTimeout(r, 200));
    assert.is((await svc.State({ id, exec_id: 'cat' })).status, 2, 'cat still runs: stdin ends only with CloseIO');
    await svc.CloseIO({ id, exec_id: 'cat', stdin: true });
    assert.is((await svc.Wait({ id, exec_id: 'cat' })).exit_status, 0);
    assert.is(await text, 'ping\n');
    await svc.Delete({ id, exec_id: 'cat' });
  }));

test('terminal: the output comes from the pty, ResizePty sets its size', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, dir } = setup(defer, { process: { terminal: true, args: ['sh', '-c', 'sleep 0.3; stty size; [ -t 0 ] && echo is-a-tty'] } });
    const out = new Fifo(dir, 'stdout');
    await svc.Create({ id, bundle, terminal: true, stdout: out.path });
    const text = out.readAll();
    await svc.ResizePty({ id, width: 101, height: 33 });
    await svc.Start({ id });
    assert.is((await svc.Wait({ id })).exit_status, 0);
    assert.is((await text).replace(/\r/g, ''), '33 101\nis-a-tty\n');
    await svc.Delete({ id });
  }));

test('rootfs mounts from Create are mounted on <bundle>/rootfs and unmounted by Delete', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, dir } = setup(defer, { process: { args: ['sh', '-c', 'test -x /bin/busybox'] } });
    const lower = path.join(bundle, 'lower');
    fs.renameSync(path.join(bundle, 'rootfs'), lower);
    fs.mkdirSync(path.join(bundle, 'rootfs'));
    const mounted = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${path.join(bundle, 'rootfs')} `);
    defer(() => {
      if (mounted()) native().umount2(path.join(bundle, 'rootfs'), 2);
    });
    const log = path.join(dir, 'out');
    await svc.Create({ id, bundle, stdout: `file://${log}`, rootfs: [{ type: 'bind', source: lower, options: ['rbind'] }] });
    assert.ok(mounted(), 'mounted');
    await svc.Start({ id });
    assert.is((await svc.Wait({ id })).exit_status, 0);
    await svc.Delete({ id });
    assert.not.ok(mounted(), 'unmounted');
  }));

test('a process that exits while Start runs: Start succeeds, /tasks/exit comes after /tasks/start', () =>
  withCleanup(async (defer) => {
    // `true` exits as soon as exec.fifo releases it, often before Start's own bookkeeping.
    const { svc, bundle, id } = setup(defer, { process: { args: ['true'] } });
    const events: string[] = [];
    (svc as unknown as { opts: { publish: (t: string, _: unknown, e: Msg) => void } }).opts.publish = (t, _, e) => events.push(`${t}${e.exec_id ? ` ${e.exec_id}` : ''}`);
    await svc.Create({ id, bundle });
    const { pid } = await svc.Start({ id });
    assert.ok(pid > 0);
    assert.is((await svc.Wait({ id })).exit_status, 0);
    assert.equal(events, ['/tasks/create', '/tasks/start', '/tasks/exit']);
    await svc.Delete({ id });
    // Many short-lived containers in one service: every Start must succeed.
    for (let i = 0; i < 15; i++) {
      const cid = `${id}-${i}`;
      const b = makeBundle({ process: { args: ['true'] } });
      try {
        await svc.Create({ id: cid, bundle: b });
        await svc.Start({ id: cid });
        assert.is((await svc.Wait({ id: cid })).exit_status, 0, `container ${i}`);
        await svc.Delete({ id: cid });
      } finally {
        if (svc.containers.has(cid)) {
          await svc.Kill({ id: cid, signal: 9, all: true }).catch(() => undefined);
          await svc.Delete({ id: cid }).catch(() => undefined);
        }
        fs.rmSync(b, { recursive: true, force: true });
      }
    }
    const starts = events.filter((e) => e === '/tasks/start').length, exits = events.filter((e) => e === '/tasks/exit').length;
    assert.is(starts, 16);
    assert.is(exits, 16);
    for (let i = 0; i < events.length; i++) if (events[i] === '/tasks/exit') assert.is(events[i - 1], '/tasks/start', 'every exit follows its start');
  }));

test('delete a created container kills its init', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['sleep', '100'] } });
    const { pid } = await svc.Create({ id, bundle });
    const d = await svc.Delete({ id });
    assert.is(d.pid, pid);
    assert.is(d.exit_status, 137);
    assert.not.ok(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 'init gone');
    await svc.Shutdown({});
  }));

test('delete after the shim died: the DeleteResponse has the pid from the state, and the init is gone', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, root } = setup(defer, { process: { args: ['sleep', '100'] } });
    const { pid } = await svc.Create({ id, bundle });
    const before = process.env.SHOAL_SHIM_STATE_ROOT;
    process.env.SHOAL_SHIM_STATE_ROOT = path.dirname(root);
    let resp: Buffer;
    try {
      resp = await cleanupDeadShim({ id, namespace: path.basename(root), bundle, warn: () => undefined });
    } finally {
      if (before === undefined) delete process.env.SHOAL_SHIM_STATE_ROOT;
      else process.env.SHOAL_SHIM_STATE_ROOT = before;
    }
    // DeleteResponse field 1 (pid), a varint.
    assert.is(resp[0], 0x08);
    let v = 0;
    for (let i = 1, shift = 0; ; i++, shift += 7) {
      v += (resp[i] & 0x7f) * 2 ** shift;
      if (!(resp[i] & 0x80)) break;
    }
    assert.is(v, pid);
    assert.not.ok(fs.existsSync(path.join(root, id)), 'state removed');
    const deadline = Date.now() + 5000;
    const alive = () => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.not.ok(alive(), 'init killed');
  }));

test('delete after a shim died in Create: the cgroup is found from the bundle and what runs in it is killed', () =>
  withCleanup(async (defer) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shim-base-'));
    defer(() => fs.rmSync(base, { recursive: true, force: true }));
    const bundle = makeBundle({});
    defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
    const id = uniqueId('shimdead');
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    // What a Create that died before writing the state leaves: its directory, a cgroup, a process.
    const store = new StateStore(path.join(base, 'ns1'));
    store.reserve(id);
    const cg = createCgroup(containerCgroupOptions(id, config));
    defer(() => cg.destroy());
    const sleeper = spawn('sleep', ['100'], { stdio: 'ignore' });
    defer(() => sleeper.kill('SIGKILL'));
    for (const f of cg.procsFiles()) fs.writeFileSync(f, String(sleeper.pid));
    const gone = new Promise((r) => sleeper.once('exit', r));
    const before = process.env.SHOAL_SHIM_STATE_ROOT;
    process.env.SHOAL_SHIM_STATE_ROOT = base;
    try {
      await cleanupDeadShim({ id, namespace: 'ns1', bundle, warn: () => undefined });
    } finally {
      if (before === undefined) delete process.env.SHOAL_SHIM_STATE_ROOT;
      else process.env.SHOAL_SHIM_STATE_ROOT = before;
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    assert.is(sleeper.signalCode, 'SIGKILL', 'the process in the cgroup was killed');
    for (const d of cg.dirs()) assert.not.ok(fs.existsSync(d), `${d} removed`);
    assert.not.ok(fs.existsSync(store.dir(id)), 'state directory removed');
  }));

test('orphans re-parented to the subreaper are reaped on SIGCHLD, libuv children are not', async () => {
  const reaped: number[] = [];
  const stop = startOrphanReaper((pid) => reaped.push(pid), 50);
  try {
    // sh exits at once (spawnSync reaps it); its background sleep is re-parented to us.
    const r = spawnSync('sh', ['-c', 'sleep 0.2 & echo $!'], { encoding: 'utf8' });
    const orphan = Number(r.stdout.trim());
    assert.ok(orphan > 0);
    const deadline = Date.now() + 5000;
    while (!reaped.includes(orphan) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.ok(reaped.includes(orphan), 'orphan reaped');
    assert.not.ok(fs.existsSync(`/proc/${orphan}`), 'no zombie left');
    // A child libuv spawned still reports its own exit status.
    const child = (await import('child_process')).spawn('sh', ['-c', 'exit 4']);
    const code = await new Promise((res) => child.on('exit', res));
    assert.is(code, 4);
  } finally {
    stop();
  }
});

test.run();
