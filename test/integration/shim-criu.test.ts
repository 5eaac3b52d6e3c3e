/*
 * Checkpoint and restore through containerd and shoal's shim, with CRIU (which cannot dump on
 * this host's kernel): on the host this file boots the pure cgroup v2 VM
 * (/work/shared/vm/run-in-vm.sh) and runs itself there with SHOAL_IN_VM=1. In the VM, for each
 * containerd (Debian 12's 1.6, then the 1.7 and 2.x of test/lib/containerd-releases.ts, which the
 * VM sees in the host's /), containerd runs a busybox counter that appends to a bind-mounted host
 * dir, with its stdio on containerd's fifos:
 * - `ctr tasks checkpoint` dumps it while it is paused (the client pauses around the dump), and
 *   `ctr containers checkpoint --task` while it runs (Checkpoint RPC, then containerd stores the
 *   image);
 * - the container is killed and removed;
 * - `ctr containers restore --live` recreates it from the checkpoint (Create with a checkpoint,
 *   Start restores), and the count goes on from where it was dumped, not from 1;
 * - then kill and delete leave nothing behind.
 * Skipped with a printed reason when the VM script, qemu, criu or containerd is missing;
 * SHOAL_SKIP_VM=1 skips it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cannotRun } from '../lib/daemons';
import { ok, ready, SHIM_RUNTIME, startShimContainerd, taskStatuses, waitFor } from '../lib/shim-env';
import { RELEASES, usableRelease } from '../lib/containerd-releases';
import { runVm, VM_SCRIPT, vmSkipReason } from '../lib/vm';

/** Upper bound for the VM run: boot, then per containerd an image import, dumps and a restore under TCG. */
const TIMEOUT_MS = 15 * 60_000;
const inVm = process.env.SHOAL_IN_VM === '1';
const criuPath = ['/usr/sbin/criu', '/sbin/criu', '/usr/local/sbin/criu'].find((p) => fs.existsSync(p));
/** What the VM run prints once a containerd passed. */
const mark = (name: string) => `shim-criu: checkpoint and restore through ${name} passed`;

/** The containerds to test: the installed one, and each release that runs here (and in the VM). */
function containerds(): Array<{ name: string; bin?: string }> {
  const out: Array<{ name: string; bin?: string }> = [{ name: 'containerd (installed)' }];
  for (const r of RELEASES) {
    const u = usableRelease(r);
    if ('bin' in u) out.push({ name: r.name, bin: u.bin });
    else console.log(`  (${r.name}: skipped: ${u.unavailable})`);
  }
  return out;
}

/** Why the VM run cannot happen here, or undefined when it can. */
function skipReason(): string | undefined {
  const why = vmSkipReason();
  if (why) return why;
  if (!criuPath) return 'criu is not installed on the host (apt-get install criu; the VM sees the host /)';
  return cannotRun(['containerd', 'ctr']);
}

/** The counter's log: one number per line. */
function counts(file: string): number[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

if (!inVm) {
  test('containerd checkpoints a shoal task and restores it, the count going on (VM)', () => {
    const why = skipReason();
    if (why) return console.log(`  (skipped: ${why})`);
    const r = runVm(VM_SCRIPT, ['--mem', '2G', '--cpus', '2', '--', 'env', 'SHOAL_IN_VM=1', process.execPath, __filename], TIMEOUT_MS);
    const out = r.out;
    if (r.status === 125) return console.log(`  (skipped: the VM could not start)\n${out.slice(-2000)}`);
    assert.is(r.status, 0, `shim CRIU VM test failed (status ${r.status}, signal ${r.signal}):\n${out.slice(-8000)}`);
    for (const { name } of containerds()) assert.ok(out.includes(mark(name)), `no pass mark for ${name} in the VM output:\n${out.slice(-4000)}`);
    for (const line of out.split('\n')) if (line.includes('shim-criu: ') && !line.includes(' passed')) console.log(line);
  });
} else {
  for (const { name: which, bin } of containerds()) test(`in the VM, ${which}: ctr containers checkpoint --task, then ctr containers restore --live`, async () => {
    const env = await startShimContainerd(`shoal-ckpt-${process.pid}`, undefined, bin);
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-ckd-'));
    fs.chmodSync(data, 0o777);
    const log = path.join(data, 'log');
    const id = `ck-${process.pid}`;
    const ref = `shoal-checkpoint-${process.pid}`;
    const t0 = Date.now();
    const say = (m: string) => console.log(`  shim-criu: ${which}: ${m} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const c = ready(env);
    if (!c) return;
    const status = () => taskStatuses(c).get(id);
    try {
      const script = 'i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.2; done';
      ok(c.ctr(['run', '--runtime', SHIM_RUNTIME, '-d', '--mount', `type=bind,src=${data},dst=/data,options=rbind:rw`, env.image, id, 'sh', '-c', script], { timeoutMs: 120_000 }), 'ctr run -d');
      await waitFor('the counter', () => counts(log).length >= 5, 120_000);
      say('running');

      // `ctr tasks checkpoint` pauses the task around the dump: CRIU dumps a frozen cgroup.
      const name = ok(c.ctr(['tasks', 'checkpoint', id], { timeoutMs: 240_000 }), 'ctr tasks checkpoint');
      say(`tasks checkpoint: ${name}`);
      assert.is(status(), 'RUNNING', 'resumed after the paused dump');
      // containerd 1.6 fails a second checkpoint whose spec blob is still stored ("already
      // exists"): the first image and its content go before the next one.
      ok(c.ctr(['images', 'rm', '--sync', name]), 'images rm --sync');

      ok(c.ctr(['containers', 'checkpoint', '--task', id, ref], { timeoutMs: 240_000 }), 'ctr containers checkpoint --task');
      const dumpedAt = counts(log).length;
      say(`checkpointed running near ${dumpedAt}`);
      assert.is(status(), 'RUNNING', 'without exit the container runs on after the dump');
      await waitFor('the counter after the dump', () => counts(log).length >= dumpedAt + 3, 60_000);
      assert.match(c.ctr(['images', 'ls', '-q']).stdout, new RegExp(ref), 'containerd stored the checkpoint image');

      ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]), 'kill');
      await waitFor('stopped', () => status() === 'STOPPED', 60_000);
      ok(c.ctr(['tasks', 'delete', id]), 'tasks delete');
      ok(c.ctr(['containers', 'delete', id]), 'containers delete');
      const beforeRestore = counts(log);
      const killedAt = beforeRestore[beforeRestore.length - 1];

      ok(c.ctr(['containers', 'restore', '--live', id, ref], { timeoutMs: 240_000 }), 'ctr containers restore --live');
      await waitFor('running after the restore', () => status() === 'RUNNING', 60_000);
      await waitFor('the counter after the restore', () => counts(log).length >= beforeRestore.length + 3, 120_000);
      const resumed = counts(log).slice(beforeRestore.length);
      say(`restored: counted on from ${resumed[0]} (killed at ${killedAt})`);
      // The restored shell goes on from its dumped i: past 1, not beyond where it was killed.
      assert.ok(resumed[0] > 1 && resumed[0] <= killedAt, `after the restore came ${resumed[0]} (killed at ${killedAt})`);
      assert.equal(resumed.slice(0, 3), [resumed[0], resumed[0] + 1, resumed[0] + 2], 'one restored counter');

      ok(c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]), 'kill the restored task');
      await waitFor('restored task stopped', () => status() === 'STOPPED', 60_000);
      ok(c.ctr(['tasks', 'delete', id]), 'delete the restored task');
      ok(c.ctr(['containers', 'delete', id]), 'delete the restored container');
      c.ctr(['images', 'rm', ref]);
      console.log(mark(which));
    } finally {
      c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
      c.ctr(['tasks', 'delete', '-f', id]);
      c.ctr(['containers', 'delete', id]);
      await c.stop();
      fs.rmSync(data, { recursive: true, force: true });
    }
  });
}

test.run();
