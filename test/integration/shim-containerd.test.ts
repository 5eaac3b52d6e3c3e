/*
 * containerd driving shoal's own shim: `ctr run --runtime io.containerd.shoal.v2`. containerd
 * finds `containerd-shim-shoal-v2` on its PATH (build/Release is put first), runs in a private
 * mount namespace (test/lib/daemons.ts) and imports a hand-built OCI layout image. No runc binary
 * is involved: the shim creates the containers itself. The same tests run under Debian 12's
 * containerd 1.6 and under 1.7 and 2.x from Debian trixie and sid (test/lib/containerd-releases.ts),
 * each with its own ctr.
 */
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Containerd, runInPty } from '../lib/daemons';
import { ok, perContainerd, ready, removeAll, SHIM_RUNTIME, ShimContainerd, taskStatuses, waitFor } from '../lib/shim-env';

const RUNTIME = SHIM_RUNTIME;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const taskStatus = (c: Containerd, id: string) => taskStatuses(c).get(id);

/** Pids of live containerd-shim-shoal-v2 daemons (node running build/shim.js ... serve). */
function shimPids(): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const argv = cmd.split('\0');
      if (argv.includes('serve') && argv.some((a) => a.endsWith('/shim.js'))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** `ctr events` of the test namespace, running until stop(); text() is what it printed so far. */
function ctrEvents(c: Containerd): { text(): string; stop(): void } {
  const [nsenter, ...pre] = c.sandbox.nsenterArgs();
  const child = spawn(nsenter, [...pre, c.ctrPath, '-a', c.sock, '-n', c.namespace, 'events'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { text: () => out, stop: () => child.kill() };
}

/**
 * The tests, on `test` (a suite of its own per containerd release). `start` gives the running
 * containerd or why there is none (a skip).
 */
function shimTests(test: Test, start: () => Promise<ShimContainerd>, version?: string): void {
  let env: ShimContainerd | undefined;
  let image = '';

  test.before(async () => {
    env = await start();
    image = env.image;
  });

  test.after(async () => {
    await env?.cd?.stop().catch(() => undefined);
  });

  if (version) {
    test(`ctr and the daemon: ${version.replace(/^Version: +/, '')}x`, () => {
      const c = ready(env);
      if (!c) return;
      const v = ok(c.ctr(['version']), 'ctr version');
      assert.is(v.split(version).length - 1, 2, `client and server: ${v}`);
    });
  }

  test('ctr run --rm /bin/true, and an exit code passes through', async () => {
    const c = ready(env);
    if (!c) return;
    const before = c.snapshot();
    ok(c.ctr(['run', '--runtime', RUNTIME, '--rm', image, `t-true-${process.pid}`, '/bin/true'], { timeoutMs: 60_000 }), 'ctr run /bin/true');
    const r = c.ctr(['run', '--runtime', RUNTIME, '--rm', image, `t-exit-${process.pid}`, 'sh', '-c', 'echo out; exit 7'], { timeoutMs: 60_000 });
    assert.is(r.code, 7, `exit code: ${r.stderr}`);
    assert.match(r.stdout, /out/);
    assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
  });

  test('run -d, exec (also --tty), ps, pause/resume, metrics, kill, delete', async () => {
    const c = ready(env);
    if (!c) return;
    const id = `t-d-${process.pid}`;
    const before = c.snapshot();
    try {
      ok(c.ctr(['run', '--runtime', RUNTIME, '-d', image, id, 'sleep', '1000']), 'ctr run -d');
      await waitFor('running', () => taskStatus(c, id) === 'RUNNING');
      assert.is(ok(c.ctr(['tasks', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo from-exec; hostname']), 'exec').split('\n')[0], 'from-exec');
      const x = c.ctr(['tasks', 'exec', '--exec-id', 'e2', id, 'sh', '-c', 'exit 5']);
      assert.is(x.code, 5, 'exec exit code');
      const tty = runInPty([...c.sandbox.nsenterArgs(), c.ctrPath, '-a', c.sock, '-n', c.namespace, 'tasks', 'exec', '--tty', '--exec-id', 'e3', id, 'sh', '-c', 'test -t 0 && echo is-a-tty']);
      assert.match(tty.stdout, /is-a-tty/, `exec --tty: ${tty.stdout}${tty.stderr}`);
      const ps = ok(c.ctr(['tasks', 'ps', id]), 'tasks ps');
      assert.ok(ps.split('\n').length >= 2, `ps lists the init: ${ps}`);
      ok(c.ctr(['tasks', 'pause', id]), 'pause');
      await waitFor('paused', () => taskStatus(c, id) === 'PAUSED');
      ok(c.ctr(['tasks', 'resume', id]), 'resume');
      await waitFor('running again', () => taskStatus(c, id) === 'RUNNING');
      const m = ok(c.ctr(['tasks', 'metrics', id]), 'metrics');
      assert.match(m, /memory|pids|cpu/i, `metrics show numbers: ${m}`);
      ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]), 'kill');
      await waitFor('stopped', () => taskStatus(c, id) === 'STOPPED');
      ok(c.ctr(['tasks', 'delete', id]), 'tasks delete');
      ok(c.ctr(['containers', 'delete', id]), 'containers delete');
    } finally {
      await removeAll(c, [id]);
    }
    assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
  });

  test('20 containers in one namespace are served by one shim process', async () => {
    const c = ready(env);
    if (!c) return;
    const ids = Array.from({ length: 20 }, (_, i) => `t-many-${process.pid}-${i}`);
    const before = c.snapshot();
    try {
      for (const id of ids) ok(c.ctr(['run', '--runtime', RUNTIME, '-d', image, id, 'sleep', '1000']), `run ${id}`);
      await waitFor('all running', () => ids.every((id) => taskStatus(c, id) === 'RUNNING'), 60_000);
      const shims = shimPids();
      assert.is(shims.length, 1, `one shim process, found ${shims.length}: ${shims}`);
    } finally {
      await removeAll(c, ids);
    }
    assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
  });

  test('ctr events shows the task events', async () => {
    const c = ready(env);
    if (!c) return;
    const id = `t-ev-${process.pid}`;
    const events = ctrEvents(c);
    try {
      await sleep(300);
      ok(c.ctr(['run', '--runtime', RUNTIME, '-d', image, id, 'sleep', '1000']), 'run -d');
      await waitFor('running', () => taskStatus(c, id) === 'RUNNING');
      ok(c.ctr(['tasks', 'exec', '--exec-id', 'ev1', id, 'true']), 'exec');
      ok(c.ctr(['tasks', 'pause', id]), 'pause');
      ok(c.ctr(['tasks', 'resume', id]), 'resume');
      ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]), 'kill');
      await waitFor('stopped', () => taskStatus(c, id) === 'STOPPED');
      ok(c.ctr(['tasks', 'delete', id]), 'delete');
      await waitFor('events', () => events.text().includes('/tasks/delete'), 5000).catch(() => undefined);
      for (const topic of ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete'])
        assert.ok(events.text().includes(topic), `ctr events shows ${topic}:\n${events.text()}`);
    } finally {
      events.stop();
      await removeAll(c, [id]);
    }
  });

  test('metrics show the memory limit; an OOM kill shows as /tasks/oom in ctr events', async () => {
    const c = ready(env);
    if (!c) return;
    const id = `t-oom-${process.pid}`;
    const events = ctrEvents(c);
    const before = c.snapshot();
    try {
      await sleep(300);
      const limit = 24 * 1024 * 1024;
      // dd's 64 MiB buffer cannot fit: the kernel kills it, the shell reports and keeps running.
      const args = ['sh', '-c', 'while [ ! -e /go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000'];
      ok(c.ctr(['run', '--runtime', RUNTIME, '-d', '--memory-limit', String(limit), image, id, ...args]), 'run -d --memory-limit');
      await waitFor('running', () => taskStatus(c, id) === 'RUNNING');
      const m = JSON.parse(ok(c.ctr(['tasks', 'metrics', '--format', 'json', id]), 'metrics --format json'));
      const data = m.Data ?? m.data ?? m;
      const memLimit = data.memory?.usage?.limit ?? data.memory?.usage_limit ?? data.Memory?.Usage?.Limit;
      assert.is(Number(memLimit), limit, `memory limit in ${JSON.stringify(m).slice(0, 400)}`);
      ok(c.ctr(['tasks', 'exec', '--exec-id', 'go', id, 'touch', '/go']), 'exec touch /go');
      await waitFor('/tasks/oom', () => events.text().includes('/tasks/oom'), 15_000);
    } finally {
      events.stop();
      await removeAll(c, [id]);
    }
    assert.equal(await c.sandbox.leaksSince(before), [], 'nothing leaked');
  });
}

perContainerd('shoal-shim', shimTests);
