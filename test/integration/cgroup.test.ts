/*
 * The cgroup layer against the real kernel (root needed): limits land in the right files, a
 * process written to procsFiles() is in the cgroup of every hierarchy, freeze/thaw, destroy
 * from the stored JSON, cleanup on failure. Runs on hybrid/v1 hosts and on pure v2 (VM).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { ShoalError } from '../../shim/src/runtime/errors';
import { createCgroup, loadCgroup } from '../../shim/src/runtime/cgroup/manager';
import { detectCgroups, parseProcCgroup } from '../../shim/src/runtime/cgroup/detect';
import type { CgroupHandle } from '../../shim/src/runtime/cgroup/types';

const layout = detectCgroups();
const isV2 = layout.mode === 'v2';
/** Unique parent for this run; every test's cgroup lives below it. */
const PARENT = `/shoal-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

function read(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8').trim();
}

/** Directory of `h` in the hierarchy holding v1 `controller` (the unified one on v2). */
function dirFor(h: CgroupHandle, controller: string): string {
  const hier = isV2 ? layout.unified! : layout.byController.get(controller)!;
  return h.dirs().find((d) => d.startsWith(hier.mountpoint + '/'))!;
}

function sleeper(): { child: ChildProcess; exited: Promise<NodeJS.Signals | null> } {
  const child = spawn('sleep', ['100'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
  return { child, exited };
}

/** Destroy (best effort) and remove PARENT from every hierarchy. */
async function cleanup(h?: CgroupHandle): Promise<void> {
  if (h) await h.destroy().catch(() => undefined);
  for (const hier of layout.hierarchies) {
    const dir = path.join(hier.mountpoint, PARENT);
    for (const child of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      if (child.isDirectory()) fs.rmdirSync(path.join(dir, child.name));
    }
    if (fs.existsSync(dir)) fs.rmdirSync(dir);
  }
}

const RESOURCES = {
  memory: { limit: 64 * 1024 * 1024, swap: 128 * 1024 * 1024, reservation: 32 * 1024 * 1024 },
  cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
  pids: { limit: 42 },
};

test('mode detection matches the host', () => {
  const pureV2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  assert.is(layout.mode, pureV2 ? 'v2' : fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers') ? 'hybrid' : 'v1');
});

test('create applies memory, cpu, cpuset and pids limits', async () => {
  let h: CgroupHandle | undefined;
  try {
    h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/limits`, resources: RESOURCES });
    assert.is(h.path, `${PARENT}/limits`);
    assert.is(h.mode, layout.mode);
    const mem = dirFor(h, 'memory');
    const cpu = dirFor(h, 'cpu');
    if (isV2) {
      assert.is(read(mem, 'memory.max'), String(64 << 20));
      assert.is(read(mem, 'memory.swap.max'), String(64 << 20));
      assert.is(read(mem, 'memory.low'), String(32 << 20));
      assert.is(read(cpu, 'cpu.weight'), '20');
      assert.is(read(cpu, 'cpu.max'), '50000 100000');
    } else {
      assert.is(read(mem, 'memory.limit_in_bytes'), String(64 << 20));
      if (fs.existsSync(path.join(mem, 'memory.memsw.limit_in_bytes'))) {
        assert.is(read(mem, 'memory.memsw.limit_in_bytes'), String(128 << 20));
      }
      assert.is(read(mem, 'memory.soft_limit_in_bytes'), String(32 << 20));
      assert.is(read(cpu, 'cpu.shares'), '512');
      assert.is(read(cpu, 'cpu.cfs_quota_us'), '50000');
      assert.is(read(cpu, 'cpu.cfs_period_us'), '100000');
    }
    assert.is(read(dirFor(h, 'cpuset'), 'cpuset.cpus'), '0');
    assert.is(read(dirFor(h, 'cpuset'), 'cpuset.mems'), '0');
    assert.is(read(dirFor(h, 'pids'), 'pids.max'), '42');
  } finally {
    await cleanup(h);
  }
});

/** "major:minor" of the first real block device, or null. */
function blockDevice(): string | null {
  for (const b of fs.existsSync('/sys/block') ? fs.readdirSync('/sys/block') : []) {
    if (!/^(loop|ram|zram|dm-|nbd)/.test(b)) return read(`/sys/block/${b}`, 'dev');
  }
  return null;
}

test('blkio/io throttle and weight', async () => {
  const dev = blockDevice();
  if (!dev) return console.log('  (skipped: no block device)');
  const [major, minor] = dev.split(':').map(Number);
  let h: CgroupHandle | undefined;
  try {
    const throttle = { throttleReadBpsDevice: [{ major, minor, rate: 1048576 }] };
    try {
      h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/io`, resources: { blockIO: { weight: 300, ...throttle } } });
    } catch (e) {
      // A kernel without BFQ (or CFQ) cannot weight I/O: the error says so.
      assert.match((e as Error).message, /^blockIO\.weight \(.*\): this kernel has neither (blkio\.weight nor blkio\.bfq\.weight|io\.bfq\.weight nor io\.weight)$/);
      console.log('  (weight skipped: this kernel has no blkio weight file)');
      h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/io`, resources: { blockIO: throttle } });
    }
    const d = dirFor(h, 'blkio');
    if (isV2) {
      assert.ok(read(d, 'io.max').includes(`${dev} rbps=1048576`), read(d, 'io.max'));
      const w = fs.existsSync(path.join(d, 'io.bfq.weight')) ? read(d, 'io.bfq.weight') : read(d, 'io.weight');
      assert.match(w, /\b(300|2930)\b/);
    } else {
      assert.is(read(d, 'blkio.throttle.read_bps_device'), `${dev} 1048576`);
      const wf = ['blkio.weight', 'blkio.bfq.weight'].find((f) => fs.existsSync(path.join(d, f)));
      if (wf) assert.match(read(d, wf), /\b300\b/);
    }
  } finally {
    await cleanup(h);
  }
});

test('a process joins every hierarchy, freezes, thaws, and dies with destroy from JSON', async () => {
  let h: CgroupHandle | undefined;
  const { child, exited } = sleeper();
  try {
    h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/run`, resources: { pids: { limit: 10 } } });
    assert.is(h.procsFiles().length, layout.hierarchies.length);
    for (const f of h.procsFiles()) fs.writeFileSync(f, String(child.pid));
    const own = parseProcCgroup(fs.readFileSync(`/proc/${child.pid}/cgroup`, 'utf8'));
    for (const hier of layout.hierarchies) assert.is(own.get(hier.key), `${PARENT}/run`, `hierarchy "${hier.key}"`);
    assert.equal(h.pids(), [child.pid]);

    assert.is(h.isFrozen(), false);
    await h.setFrozen(true);
    assert.is(h.isFrozen(), true);
    if (isV2) assert.is(read(h.dirs()[0], 'cgroup.freeze'), '1');
    else assert.is(read(dirFor(h, 'freezer'), 'freezer.state'), 'FROZEN');
    await h.setFrozen(false);
    assert.is(h.isFrozen(), false);

    // A nested child cgroup with the process in it must not stop destroy.
    const nested = h.dirs().map((d) => path.join(d, 'sub'));
    for (const d of nested) {
      fs.mkdirSync(d);
      // A new v1 cpuset cgroup is empty and takes no tasks until cpus/mems are filled in.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (!isV2 && fs.existsSync(path.join(d, f))) fs.writeFileSync(path.join(d, f), read(path.dirname(d), f));
      }
    }
    for (const d of nested) fs.writeFileSync(path.join(d, 'cgroup.procs'), String(child.pid));
    assert.equal(h.pids(), [child.pid]);

    const stored = JSON.parse(JSON.stringify(h.toJSON()));
    const reopened = loadCgroup(stored);
    assert.equal(reopened.dirs(), h.dirs());
    await reopened.destroy();
    assert.is(await exited, 'SIGKILL');
    for (const d of h.dirs()) assert.not.ok(fs.existsSync(d), `${d} removed`);
    await reopened.destroy(); // idempotent
  } finally {
    child.kill('SIGKILL');
    await cleanup(h);
  }
});

test('destroy kills a paused (frozen) container', async () => {
  let h: CgroupHandle | undefined;
  const { child, exited } = sleeper();
  try {
    h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/paused` });
    for (const f of h.procsFiles()) fs.writeFileSync(f, String(child.pid));
    await h.setFrozen(true);
    await h.destroy();
    assert.is(await exited, 'SIGKILL');
    for (const d of h.dirs()) assert.not.ok(fs.existsSync(d));
  } finally {
    child.kill('SIGKILL');
    await cleanup(h);
  }
});

test('a failing limit names the file and errno and leaves nothing behind', async () => {
  try {
    // The kernel rejects a CFS quota below 1 ms with EINVAL on v1 and v2.
    createCgroup({ id: 'x', cgroupsPath: `${PARENT}/bad/c`, resources: { cpu: { quota: 500, period: 100000 } } });
    assert.unreachable('should fail');
  } catch (e) {
    assert.instance(e, ShoalError);
    assert.is((e as ShoalError).code, 'CGROUP');
    assert.match((e as ShoalError).message, isV2 ? /^cpu\.max: write 500 100000: EINVAL \(invalid argument\)$/
      : /^cpu\.cfs_quota_us: write 500: EINVAL \(invalid argument\)$/);
    for (const hier of layout.hierarchies) assert.not.ok(fs.existsSync(path.join(hier.mountpoint, PARENT)), hier.mountpoint);
  } finally {
    await cleanup();
  }
});

test('an existing cgroup with processes is refused', async () => {
  let h: CgroupHandle | undefined;
  const { child } = sleeper();
  try {
    h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/busy` });
    fs.writeFileSync(h.procsFiles()[0], String(child.pid));
    try {
      createCgroup({ id: 'y', cgroupsPath: `${PARENT}/busy` });
      assert.unreachable('should fail');
    } catch (e) {
      assert.is((e as ShoalError).code, 'CGROUP');
      assert.match((e as ShoalError).message, /not empty/);
    }
    assert.ok(fs.existsSync(h.dirs()[0]), 'the first cgroup survives');
  } finally {
    child.kill('SIGKILL');
    await cleanup(h);
  }
});

test('a relative cgroupsPath lands below our own cgroup in each hierarchy', async () => {
  const rel = PARENT.slice(1) + '-rel/c';
  let h: CgroupHandle | undefined;
  try {
    h = createCgroup({ id: 'x', cgroupsPath: rel });
    const own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    for (const hier of layout.hierarchies) {
      let base = own.get(hier.key) ?? '/';
      if (isV2) base = path.posix.dirname(base);
      const want = path.join(hier.mountpoint, base, rel);
      assert.ok(h.dirs().includes(want), want);
      assert.ok(fs.existsSync(want), want);
    }
    const back = loadCgroup(JSON.parse(JSON.stringify(h)));
    assert.equal(back.dirs(), h.dirs());
  } finally {
    if (h) {
      await h.destroy();
      for (const d of h.dirs()) fs.rmdirSync(path.dirname(d));
    }
  }
});

test('killAll signals every process (SIGKILL through cgroup.kill where available)', async () => {
  let h: CgroupHandle | undefined;
  const a = sleeper();
  const b = sleeper();
  try {
    h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/killall` });
    for (const f of h.procsFiles()) {
      fs.writeFileSync(f, String(a.child.pid));
      fs.writeFileSync(f, String(b.child.pid));
    }
    await h.killAll(15);
    assert.is(await a.exited, 'SIGTERM');
    assert.is(await b.exited, 'SIGTERM');
    const c = sleeper();
    for (const f of h.procsFiles()) fs.writeFileSync(f, String(c.child.pid));
    await h.killAll(9);
    assert.is(await c.exited, 'SIGKILL');
  } finally {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
    await cleanup(h);
  }
});

test('limits the host cannot apply fail with the file/controller named; devices rules survive the JSON', async () => {
  try {
    if (!isV2) {
      assert.throws(() => createCgroup({ id: 'x', cgroupsPath: `${PARENT}/u`, resources: { unified: { 'memory.high': '1G' } } }), /unified\["memory.high"\].*cgroup v2/);
      if (!layout.byController.has('net_cls')) {
        assert.throws(() => createCgroup({ id: 'x', cgroupsPath: `${PARENT}/n`, resources: { network: { classID: 1 } } }), /cannot set net_cls limit/);
      }
      if (!layout.byController.has('hugetlb') && fs.existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB')) {
        assert.throws(() => createCgroup({ id: 'x', cgroupsPath: `${PARENT}/h`, resources: { hugepageLimits: [{ pageSize: '2MB', limit: 2 << 20 }] } }), /cannot set hugetlb limit/);
      }
    } else {
      const h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/n`, resources: { network: { classID: 1 } } });
      await h.destroy();
    }
    const h = createCgroup({ id: 'x', cgroupsPath: `${PARENT}/dev`, devices: [{ type: 'c', major: 10, minor: 200 }] });
    const j = JSON.parse(JSON.stringify(h.toJSON()));
    assert.equal(j.devices, [{ type: 'c', major: 10, minor: 200, access: 'rwm', allow: true }]);
    if (!isV2) {
      // A fresh devices cgroup is reset and gets every rule: the default allow list and this device.
      const list = read(dirFor(h, 'devices'), 'devices.list').split('\n').filter(Boolean);
      for (const rule of ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm']) assert.ok(list.includes(rule), `${rule} in ${list.join('; ')}`);
      assert.not.ok(list.includes('a *:* rwm'), 'the inherited allow-all is gone');
    }
    assert.equal(JSON.parse(JSON.stringify(loadCgroup(j).toJSON())), j);
    await h.destroy();
  } finally {
    await cleanup();
  }
});

test.run();
