/* Pure tests of the cgroup layer: cgroupsPath rules, layout detection parsing, value conversions, JSON form. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShoalError } from '../../shim/src/runtime/errors';
import { cleanCgroupPath, hierarchyPaths, resolveCgroupsPath } from '../../shim/src/runtime/cgroup/path';
import { parseMountinfo, parseProcCgroup, type CgroupLayout } from '../../shim/src/runtime/cgroup/detect';
import { cpuMaxValue, cpuSharesToWeight, cpuController } from '../../shim/src/runtime/cgroup/controllers/cpu';
import { memoryController, memorySwapV2Value, memoryV1Value, memoryV2Value } from '../../shim/src/runtime/cgroup/controllers/memory';
import { pidsMaxValue, pidsController } from '../../shim/src/runtime/cgroup/controllers/pids';
import { cpusetController } from '../../shim/src/runtime/cgroup/controllers/cpuset';
import { blkioController, ioWeightValue } from '../../shim/src/runtime/cgroup/controllers/blkio';
import type { CgroupWrite } from '../../shim/src/runtime/cgroup/controllers/common';
import { parseEventsFrozen } from '../../shim/src/runtime/cgroup/controllers/freezer';
import { describeErrno, mkdirp, parsePids, readCgroupFile, readIfExists, removeCgroupTree, rmdirQuiet, writeCgroupFile } from '../../shim/src/runtime/cgroup/fsutil';
import { applyWrites } from '../../shim/src/runtime/cgroup/handle';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadCgroup } from '../../shim/src/runtime/cgroup/manager';
import { neededV2Controllers } from '../../shim/src/runtime/cgroup/v2';

/** Assert fn throws a ShoalError with `code` whose message matches `msg`. */
function throwsShoal(fn: () => unknown, code: string, msg: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ShoalError);
    assert.is((e as ShoalError).code, code);
    assert.match((e as ShoalError).message, msg);
    return;
  }
  assert.unreachable(`expected ShoalError ${code}`);
}

const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  '50 23 0:32 /docker/abc /var/lib/x/memory rw,relatime - cgroup cgroup rw,memory',
].join('\n');
const V2 = '30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
const V1 = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n34 31 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n';

test('cleanCgroupPath resolves . and .. without climbing above the root', () => {
  assert.is(cleanCgroupPath('/a//b/./c/'), '/a/b/c');
  assert.is(cleanCgroupPath('/../../x'), '/x');
  assert.is(cleanCgroupPath('a/../../b'), 'b');
  assert.is(cleanCgroupPath('/'), '/');
  assert.is(cleanCgroupPath('..'), '');
});

test('resolveCgroupsPath: default, absolute, relative', () => {
  assert.is(resolveCgroupsPath(undefined, 'abc'), '/abc');
  assert.is(resolveCgroupsPath('', 'abc'), '/abc');
  assert.is(resolveCgroupsPath('/kubepods/pod1/../pod2/c1', 'abc'), '/kubepods/pod2/c1');
  assert.is(resolveCgroupsPath('mine/c1', 'abc'), 'mine/c1');
  assert.is(resolveCgroupsPath('/a:b', 'abc'), '/a:b');
});

test('resolveCgroupsPath rejects roots, bad ids and the systemd notation', () => {
  throwsShoal(() => resolveCgroupsPath('/', 'x'), 'INVALID_CONFIG', /root cgroup/);
  throwsShoal(() => resolveCgroupsPath('a/..', 'x'), 'INVALID_CONFIG', /own cgroup/);
  throwsShoal(() => resolveCgroupsPath('', 'a/b'), 'INVALID_ARGUMENT', /container id/);
  throwsShoal(() => resolveCgroupsPath('system.slice:shoal:abc', 'abc', { systemdRunning: false }), 'UNSUPPORTED',
    /^systemd cgroup driver requested but systemd is not running$/);
  throwsShoal(() => resolveCgroupsPath(':shoal:abc', 'abc', { systemdRunning: true }), 'UNSUPPORTED', /not supported/);
  throwsShoal(() => resolveCgroupsPath('/x', 'abc', { systemd: true, systemdRunning: false }), 'UNSUPPORTED', /not running/);
});

test('parseMountinfo: hybrid host, keys, preferred mounts', () => {
  const l = parseMountinfo(HYBRID);
  assert.is(l.mode, 'hybrid');
  assert.equal(l.hierarchies.map((h) => h.key), ['cpu', 'cpuacct', 'memory', 'freezer', 'name=systemd', '']);
  assert.is(l.byController.get('memory')!.mountpoint, '/sys/fs/cgroup/memory');
  assert.is(l.unified!.mountpoint, '/sys/fs/cgroup/unified');
  assert.equal(l.hierarchies.find((h) => h.key === 'name=systemd')!.controllers, []);
});

test('parseMountinfo: pure v2 and pure v1 with co-mounted controllers', () => {
  const v2 = parseMountinfo(V2);
  assert.is(v2.mode, 'v2');
  assert.equal(v2.hierarchies.map((h) => [h.key, h.mountpoint]), [['', '/sys/fs/cgroup']]);
  const v1 = parseMountinfo(V1);
  assert.is(v1.mode, 'v1');
  assert.is(v1.hierarchies[0].key, 'cpu,cpuacct');
  assert.is(v1.byController.get('cpuacct')!.mountpoint, '/sys/fs/cgroup/cpu,cpuacct');
  throwsShoal(() => parseMountinfo('1 2 0:1 / / rw - ext4 /dev/sda rw\n'), 'UNSUPPORTED', /no cgroup/);
});

test('parseProcCgroup normalizes controller lists', () => {
  const m = parseProcCgroup('4:memory:/a\n2:cpuacct,cpu:/b\n9:name=systemd:/c\n0::/d\n');
  assert.is(m.get('memory'), '/a');
  assert.is(m.get('cpu,cpuacct'), '/b');
  assert.is(m.get('name=systemd'), '/c');
  assert.is(m.get(''), '/d');
});

test('hierarchyPaths: absolute everywhere, relative per own cgroup, v2 below our parent', () => {
  const l = parseMountinfo(HYBRID);
  const own = () => parseProcCgroup('1:cpu:/\n4:memory:/sess/x\n0::/u\n');
  const abs = hierarchyPaths('/shoal/a', l, own);
  assert.ok([...abs.values()].every((p) => p === '/shoal/a'));
  const rel = hierarchyPaths('r/c', l, own);
  assert.is(rel.get('cpu'), '/r/c');
  assert.is(rel.get('memory'), '/sess/x/r/c');
  assert.is(rel.get(''), '/u/r/c');
  assert.is(rel.get('freezer'), '/r/c'); // not in our /proc/self/cgroup: root
  const v2 = hierarchyPaths('r/c', parseMountinfo(V2), () => parseProcCgroup('0::/user.slice/sess.scope\n'));
  assert.is(v2.get(''), '/user.slice/r/c');
});

test('cpu conversions: shares → weight, cpu.max', () => {
  assert.is(cpuSharesToWeight(2), 1);
  assert.is(cpuSharesToWeight(1024), 39);
  assert.is(cpuSharesToWeight(512), 20);
  assert.is(cpuSharesToWeight(262144), 10000);
  assert.is(cpuSharesToWeight(1), 1);
  assert.is(cpuSharesToWeight(1e9), 10000);
  assert.is(cpuMaxValue(50000, 100000), '50000 100000');
  assert.is(cpuMaxValue(-1, 100000), 'max 100000');
  assert.is(cpuMaxValue(50000, undefined), '50000');
  assert.is(cpuMaxValue(undefined, 20000), 'max 20000');
  assert.is(cpuMaxValue(0, 0), undefined);
});

test('cpu writes: v1 period retried after quota, v2 weight and cpu.max', () => {
  const r = { cpu: { shares: 1024, quota: 50000, period: 100000 } };
  assert.equal(cpuController.v1Writes(r), [
    { file: 'cpu.shares', value: '1024' },
    { file: 'cpu.cfs_period_us', value: '100000', retryAfter: true },
    { file: 'cpu.cfs_quota_us', value: '50000' },
  ]);
  assert.equal(cpuController.v2Writes(r), [{ file: 'cpu.weight', value: '39' }, { file: 'cpu.max', value: '50000 100000' }]);
  throwsShoal(() => cpuController.v2Writes({ cpu: { realtimeRuntime: 5 } }), 'CGROUP', /realtime/);
  assert.not.ok(cpuController.isSet({ cpu: { cpus: '0' } }));
  assert.equal(cpusetController.v2Writes({ cpu: { cpus: '0-1', mems: '0' } }).map((w) => w.file), ['cpuset.cpus', 'cpuset.mems']);
});

test('memory conversions: -1 → max, swap on v2 = swap - limit', () => {
  assert.is(memoryV1Value(-1), '-1');
  assert.is(memoryV2Value(-1), 'max');
  assert.is(memoryV2Value(4096), '4096');
  assert.is(memorySwapV2Value(200, 100), '100');
  assert.is(memorySwapV2Value(100, 100), '0');
  assert.is(memorySwapV2Value(-1, 100), 'max');
  assert.is(memorySwapV2Value(undefined, -1), 'max');
  assert.is(memorySwapV2Value(undefined, 100), undefined);
  throwsShoal(() => memorySwapV2Value(50, 100), 'INVALID_CONFIG', />= memory limit/);
  throwsShoal(() => memorySwapV2Value(50, undefined), 'INVALID_CONFIG', /without a memory limit/);
});

test('memory writes: v1 ordering of limit and memsw, v2 files', () => {
  const r = { memory: { limit: 200, swap: 400, reservation: 100, swappiness: 0 } };
  const files = (w: { file: string }[]) => w.map((x) => x.file);
  // Creation (fresh cgroup, unlimited): limit first.
  assert.equal(files(memoryController.v1Writes(r)), [
    'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.swappiness',
  ]);
  // Update raising the limit above the current one: memsw first.
  assert.equal(files(memoryController.v1Writes(r, () => '100')).slice(0, 2), ['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
  assert.equal(files(memoryController.v1Writes(r, () => '9223372036854771712')).slice(0, 2), ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
  assert.equal(memoryController.v2Writes(r), [
    { file: 'memory.swap.max', value: '200', optional: false },
    { file: 'memory.max', value: '200' },
    { file: 'memory.low', value: '100' },
  ]);
  assert.equal(memoryController.v2Writes({ memory: { limit: -1 } }).map((w) => [w.file, w.value]), [['memory.swap.max', 'max'], ['memory.max', 'max']]);
  assert.not.ok(memoryController.isSet({ memory: {} }));
});

test('pids.max and the v2 controllers resources need', () => {
  assert.is(pidsMaxValue(100), '100');
  assert.is(pidsMaxValue(0), 'max');
  assert.is(pidsMaxValue(-1), 'max');
  assert.equal(pidsController.v1Writes({ pids: { limit: 5 } }), [{ file: 'pids.max', value: '5' }]);
  assert.equal(neededV2Controllers({ memory: { limit: 1 }, pids: { limit: 3 }, unified: { 'io.weight': '10', 'cgroup.max.depth': '3' } }).sort(),
    ['io', 'memory', 'pids']);
});

test('blkio/io: weights with scheduler fallbacks, throttles', () => {
  assert.is(ioWeightValue(10), 1);
  assert.is(ioWeightValue(300), 2930);
  assert.is(ioWeightValue(1000), 10000);
  const r = { blockIO: { weight: 300, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 0 }] } };
  // Each weight write names its setting for the error when neither file exists.
  const v1 = blkioController.v1Writes(r);
  const v2 = blkioController.v2Writes(r);
  for (const w of [v1[0], v2[0]]) assert.match(w.setting ?? '', /^blockIO\.weight \(.*BFQ/);
  const bare = (ws: CgroupWrite[]) => ws.map(({ setting: _s, ...w }) => w);
  assert.equal(bare(v1), [
    { file: 'blkio.weight', value: '300', fallback: { file: 'blkio.bfq.weight', value: '300' } },
    { file: 'blkio.throttle.read_bps_device', value: '8:0 1048576' },
    { file: 'blkio.throttle.write_iops_device', value: '8:0 0' },
  ]);
  assert.equal(bare(v2), [
    { file: 'io.bfq.weight', value: '300', fallback: { file: 'io.weight', value: '2930' } },
    { file: 'io.max', value: '8:0 rbps=1048576' },
    { file: 'io.max', value: '8:0 wiops=max' },
  ]);
  assert.ok(blkioController.isSet(r));
  assert.not.ok(blkioController.isSet({ blockIO: {} }));
});

test('applyWrites: a fallback is written when the file is missing; neither there names the setting', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-cg-writes-'));
  try {
    fs.writeFileSync(path.join(dir, 'b'), '');
    applyWrites(dir, [{ file: 'a', value: '5', fallback: { file: 'b', value: '6' }, setting: 'S' }]);
    assert.is(fs.readFileSync(path.join(dir, 'b'), 'utf8'), '6');
    throwsShoal(() => applyWrites(dir, [{ file: 'a', value: '5', fallback: { file: 'c', value: '6' }, setting: 'S (why)' }]), 'CGROUP', /^S \(why\): this kernel has neither a nor c$/);
    throwsShoal(() => applyWrites(dir, [{ file: 'a', value: '5', fallback: { file: 'c', value: '6' } }]), 'CGROUP', /^c: write 6: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('small parsers: cgroup.events, cgroup.procs, errno text', () => {
  assert.is(parseEventsFrozen('populated 1\nfrozen 1\n'), true);
  assert.is(parseEventsFrozen('populated 0\nfrozen 0'), false);
  assert.is(parseEventsFrozen(''), undefined);
  assert.equal(parsePids('12\n7\n\n'), [12, 7]);
  const e = Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
  assert.is(describeErrno(e), 'EINVAL (invalid argument)');
});

test('loadCgroup: JSON round trip keeps per-hierarchy paths and validates input', () => {
  const layout: CgroupLayout = parseMountinfo(HYBRID);
  const h = loadCgroup({ mode: 'hybrid', path: '/shoal/a', paths: { memory: '/sess/shoal/a' } }, layout);
  assert.is(h.path, '/shoal/a');
  assert.ok(h.dirs().includes('/sys/fs/cgroup/memory/sess/shoal/a'));
  assert.ok(h.procsFiles().includes('/sys/fs/cgroup/systemd/shoal/a/cgroup.procs'));
  assert.ok(h.procsFiles().includes('/sys/fs/cgroup/unified/shoal/a/cgroup.procs'));
  assert.is(h.procsFiles().length, 6);
  assert.equal(JSON.parse(JSON.stringify(h)), { mode: 'hybrid', path: '/shoal/a', paths: { memory: '/sess/shoal/a' } });
  const h2 = loadCgroup(JSON.stringify({ mode: 'v2', path: '/shoal/b' }), parseMountinfo(V2));
  assert.equal(h2.procsFiles(), ['/sys/fs/cgroup/shoal/b/cgroup.procs']);
  assert.equal(h2.toJSON(), { mode: 'v2', path: '/shoal/b' });
  throwsShoal(() => loadCgroup({ mode: 'v2', path: '/' }, layout), 'INVALID_ARGUMENT', /invalid path/);
  throwsShoal(() => loadCgroup({ mode: 'v2', path: '/a/../../etc' }, layout), 'INVALID_ARGUMENT', /invalid path/);
  throwsShoal(() => loadCgroup({ path: '/a' }, layout), 'INVALID_ARGUMENT', /mode/);
  throwsShoal(() => loadCgroup('{', layout), 'INVALID_ARGUMENT', /JSON/);
});

test('applyWrites: a run of writes to one file goes through one descriptor, one write(2) per value', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-applywrites-'));
  try {
    for (const f of ['devices.allow', 'devices.deny', 'cpu.max']) fs.writeFileSync(path.join(dir, f), '');
    fs.symlinkSync('/dev/full', path.join(dir, 'full'));
    applyWrites(dir, [
      { file: 'devices.deny', value: 'a' },
      { file: 'devices.allow', value: 'c 1:3 rwm' },
      { file: 'devices.allow', value: 'c 1:5 rwm' },
      { file: 'devices.allow', value: 'b *:* m' },
      { file: 'cpu.max', value: 'max 100000' },
    ]);
    // On regular files the writes of one descriptor follow each other; an open per value would
    // have left only the last one (each open writes at offset 0).
    assert.is(fs.readFileSync(path.join(dir, 'devices.allow'), 'utf8'), 'c 1:3 rwmc 1:5 rwmb *:* m');
    assert.is(fs.readFileSync(path.join(dir, 'devices.deny'), 'utf8'), 'a');
    assert.is(fs.readFileSync(path.join(dir, 'cpu.max'), 'utf8'), 'max 100000');
    // The value that failed is named, in a run as alone.
    throwsShoal(() => applyWrites(dir, [{ file: 'full', value: 'v1' }, { file: 'full', value: 'v2' }]), 'CGROUP', /full: write v1: ENOSPC/);
    throwsShoal(() => applyWrites(dir, [{ file: 'nope', value: 'x1' }, { file: 'nope', value: 'x2' }]), 'CGROUP', /nope: write x1: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cgroup fs helpers on plain files: mkdir -p reports what it made, reads drop one newline, errors name the file and errno', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-cgfs-'));
  try {
    const leaf = path.join(dir, 'a', 'b', 'c');
    assert.equal(mkdirp(leaf), { created: [path.join(dir, 'a'), path.join(dir, 'a', 'b'), leaf], existedLeaf: false });
    assert.equal(mkdirp(leaf), { created: [], existedLeaf: true });
    assert.is((fs.statSync(leaf).mode & 0o777).toString(8), (0o755 & ~process.umask()).toString(8));
    fs.writeFileSync(path.join(dir, 'file'), '');
    throwsShoal(() => mkdirp(path.join(dir, 'file', 'x')), 'CGROUP', /file\/x: mkdir: ENOTDIR \(not a directory\)/);

    fs.writeFileSync(path.join(leaf, 'cpu.max'), ''); // (a cgroup file is never created)
    writeCgroupFile(path.join(leaf, 'cpu.max'), 'max 100000');
    assert.is(readCgroupFile(path.join(leaf, 'cpu.max')), 'max 100000');
    fs.writeFileSync(path.join(leaf, 'cgroup.procs'), '12\n7\n');
    assert.is(readIfExists(path.join(leaf, 'cgroup.procs')), '12\n7', 'one trailing newline dropped');
    fs.writeFileSync(path.join(leaf, 'big'), 'x'.repeat(10000));
    assert.is(readIfExists(path.join(leaf, 'big'))?.length, 10000, 'read to EOF past one buffer');
    assert.is(readIfExists(path.join(leaf, 'nope')), undefined, 'ENOENT: undefined');
    throwsShoal(() => readIfExists(leaf), 'CGROUP', /c: read: EISDIR \(illegal operation on a directory\)/);
    throwsShoal(() => readCgroupFile(path.join(leaf, 'nope')), 'CGROUP', /nope: read: ENOENT \(no such file or directory\)/);
    throwsShoal(() => writeCgroupFile(path.join(leaf, 'nope'), 'x'), 'CGROUP', /nope: write x: ENOENT \(no such file or directory\)/);
    try {
      writeCgroupFile(path.join(leaf, 'nope'), 'x');
    } catch (e) {
      assert.equal((e as ShoalError).info, { errno: 'ENOENT', path: path.join(leaf, 'nope') });
    }

    // rmdir: a non-empty directory is refused (ENOTEMPTY) and left; removeCgroupTree empties
    // nested directories first and takes a missing one as removed.
    rmdirQuiet([path.join(dir, 'a'), path.join(dir, 'a', 'b')]);
    assert.ok(fs.existsSync(leaf));
    fs.rmSync(path.join(leaf, 'cpu.max'));
    fs.rmSync(path.join(leaf, 'cgroup.procs'));
    fs.rmSync(path.join(leaf, 'big'));
    await removeCgroupTree(path.join(dir, 'a'), Date.now() + 1000);
    assert.not.ok(fs.existsSync(path.join(dir, 'a')));
    await removeCgroupTree(path.join(dir, 'a'), Date.now() + 1000);
    const notDir = await removeCgroupTree(path.join(dir, 'file'), Date.now() + 1000).then(() => null, (e: ShoalError) => e);
    assert.match(notDir?.message ?? '', /file: rmdir: ENOTDIR \(not a directory\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
