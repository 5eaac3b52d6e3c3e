/*
 * The idle linger of a namespace's shim under real containerd 1.6 (SHOAL_SHIM_LINGER=8 in
 * containerd's environment, which its shims inherit): the shim outlives its last container's
 * Shutdown, serves the namespace's next container, and ends by itself once idle for the linger;
 * a shim grouped by annotation (as a sandbox's) ends at its Shutdown. Assertions are about which
 * process serves and end states, with waits far longer than the behaviour needs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import { Containerd } from '../lib/daemons';
import { alive, ok, ready, ShimContainerd, SHIM_RUNTIME, shimPid, shimSocket, startShimContainerd, taskStatuses, waitFor } from '../lib/shim-env';

let env: ShimContainerd | undefined;

test.before(async () => {
  env = await startShimContainerd(`shoal-linger-${process.pid}`, { SHOAL_SHIM_LINGER: '8' });
});

test.after(async () => {
  await env?.cd?.stop().catch(() => undefined);
});

function run(c: Containerd, id: string, extra: string[] = []): void {
  ok(c.ctr(['run', '--runtime', SHIM_RUNTIME, '-d', ...extra, env!.image, id, 'sleep', '1000']), `run ${id}`);
}

async function remove(c: Containerd, id: string): Promise<void> {
  c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(`${id} stopped`, () => taskStatuses(c).get(id) !== 'RUNNING', 10_000).catch(() => undefined);
  ok(c.ctr(['tasks', 'delete', '-f', id]), `tasks delete ${id}`);
  ok(c.ctr(['containers', 'delete', id]), `containers delete ${id}`);
}

test('a namespace shim lingers for the next container, then ends; an annotation group shim ends at Shutdown', async () => {
  const c = ready(env);
  if (!c) return;
  const [a, b, g] = ['a', 'b', 'g'].map((x) => `linger-${x}-${process.pid}`);
  try {
    run(c, a);
    const sock = shimSocket(c, a);
    const shim = await shimPid(c, a);
    await remove(c, a);
    assert.ok(alive(shim), 'the shim outlived its last container');
    assert.ok(fs.existsSync(sock), 'and still listens');

    run(c, b);
    assert.is(shimSocket(c, b), sock, 'same group, same socket');
    assert.is(await shimPid(c, b), shim, 'the lingering shim serves the next container');
    const init = Number(ok(c.ctr(['tasks', 'ls']), 'tasks ls').split('\n').find((l) => l.startsWith(b))?.trim().split(/\s+/)[1]);
    assert.match(fs.readFileSync(`/proc/${init}/status`, 'utf8'), new RegExp(`\\nPPid:\\t${shim}\\n`), "the container's init is the shim's child");
    await remove(c, b);
    await waitFor('the idle shim ended after its linger', () => !alive(shim), 60_000);
    assert.not.ok(fs.existsSync(sock), 'socket removed');

    run(c, g, ['--annotation', `io.containerd.runc.v2.group=linger-${process.pid}`]);
    const gsock = shimSocket(c, g);
    assert.is.not(gsock, sock, 'the annotation names another group');
    const gshim = await shimPid(c, g);
    await remove(c, g);
    // Far less than the 8 s linger is needed; the margin only absorbs a loaded machine.
    await waitFor('the group shim ended at Shutdown', () => !alive(gshim), 5_000);
    assert.not.ok(fs.existsSync(gsock), 'its socket removed');
  } finally {
    for (const id of [a, b, g]) {
      c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
      c.ctr(['tasks', 'delete', '-f', id]);
      c.ctr(['containers', 'delete', id]);
    }
  }
});

test.run();
