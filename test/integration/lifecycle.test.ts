/*
 * The OCI lifecycle on real busybox containers, driven through the CLI the way containerd does:
 * create -> state (created, live pid, process not yet run) -> start -> kill -> stopped -> delete,
 * then `run` (foreground exit status, 128+signal) and `run -d`, --pid-file and list. Every test
 * ends by checking that nothing is left: no state dir, no cgroup, no process, no mount.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, forceDelete, removeRoot, Defer, joinStrace } from '../lib/shoal';
import { makeBundle, BundleOverrides } from '../lib/rootfs';
import { runInPty } from '../lib/daemons';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `find ARGS` (cgroup dirs of other tests vanish during the walk: keep stdout, ignore the status). */
function findCgroups(args: string[]): string {
  return spawnSync('find', args, { encoding: 'utf8' }).stdout ?? '';
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** `create`/`run -d` leave the container holding our stdio: use files, never pipes. */
function shoalToFiles(args: string[], root: string, dir: string): { code: number; stdout: string; stderr: string } {
  const out = path.join(dir, 'stdout'), err = path.join(dir, 'stderr');
  const o = fs.openSync(out, 'a'), e = fs.openSync(err, 'a');
  try {
    const r = spawnSync(process.execPath, [shoalBin(), '--root', root, ...args], { stdio: ['ignore', o, e], timeout: 30_000 });
    return { code: r.status ?? -1, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    fs.closeSync(o);
    fs.closeSync(e);
  }
}

function state(id: string, root: string): { status: string; pid: number; id: string; bundle: string } {
  const r = runShoal(['state', id], { root });
  assert.is(r.code, 0, `state ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The container's cgroup directories on the host, from /proc/<pid>/cgroup and the cgroup mounts. */
function cgroupDirsOf(pid: number): string[] {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2');
  const dirs: string[] = [];
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const a = line.indexOf(':'), b = line.indexOf(':', a + 1);
    const ctrls = line.slice(a + 1, b), p = line.slice(b + 1);
    const m = ctrls === '' ? mounts.find((f) => f[2] === 'cgroup2')
      : mounts.find((f) => f[2] === 'cgroup' && ctrls.split(',').every((c) => f[3].split(',').includes(c)));
    if (m) dirs.push(path.join(m[1], p));
  }
  return dirs;
}

/** Whether pid is a live process (a zombie waiting for pid 1 to reap it is not). */
function isLive(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Live processes that belong to container `id` (by cgroup path or command line). */
function processesOf(id: string): number[] {
  const pids: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      if (!isLive(Number(n))) continue;
      if (fs.readFileSync(`/proc/${n}/cgroup`, 'utf8').includes(id) || fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(id)) pids.push(Number(n));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** Asserts that container `id` left nothing: state dir, cgroups (also `dirs`), processes, mounts. */
async function assertNoTraces(id: string, root: string, bundle: string, dirs: string[] = [], pid = 0): Promise<void> {
  assert.not.ok(fs.existsSync(path.join(root, id)), `state dir ${root}/${id} left`);
  const found = findCgroups(['/sys/fs/cgroup', '-name', `*${id}*`]).trim();
  assert.is(found, '', `cgroups left: ${found}`);
  for (const d of dirs) assert.not.ok(fs.existsSync(d), `cgroup dir ${d} left`);
  await waitFor(`processes of ${id} to go`, () => processesOf(id).length === 0 && (!pid || !isLive(pid)), 10_000)
    .catch(() => assert.unreachable(`processes left for ${id}: ${processesOf(id).join(' ')} (init ${pid})`));
  const mi = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.not.ok(mi.includes(bundle) || mi.includes(id), 'a mount of the container is left on the host');
}

/** A bundle with a host dir bind-mounted at /out (the container writes markers there). */
function setup(defer: Defer, proc: BundleOverrides["process"]) {
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-lc-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const out = path.join(work, 'out');
  fs.mkdirSync(out);
  const bundle = makeBundle({ process: proc }, { dir: path.join(work, 'bundle'), edit: (s) => s.mounts!.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] }) });
  const id = uniqueId('lc');
  defer(() => forceDelete(id, root));
  return { root, work, out, bundle, id };
}

const LOOP = "trap 'exit 0' TERM; echo started > /out/marker; echo hello; while :; do sleep 0.1; done";

test('create, state, start, kill, delete: every step and no trace left', async () => {
  await withCleanup(async (defer) => {
    const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
    const pidFile = path.join(work, 'init.pid');
    const c = shoalToFiles(['create', '--bundle', bundle, '--pid-file', pidFile, id], root, work);
    assert.is(c.code, 0, c.stderr);
    const s = state(id, root);
    assert.is(s.status, 'created');
    assert.is(s.id, id);
    assert.is(s.bundle, bundle);
    assert.ok(s.pid > 0 && fs.existsSync(`/proc/${s.pid}`), 'created container has a live pid');
    assert.is(fs.readFileSync(pidFile, 'utf8').trim(), String(s.pid), '--pid-file holds the pid');
    assert.is(fs.readFileSync(`/proc/${s.pid}/comm`, 'utf8').trim(), 'shoal:[init]');
    const dirs = cgroupDirsOf(s.pid);
    assert.ok(dirs.length > 0 && dirs.every((d) => d.includes(id) && fs.existsSync(d)), `cgroups: ${dirs}`);
    await sleep(300);
    assert.not.ok(fs.existsSync(path.join(out, 'marker')), 'the process ran before start');
    assert.not.ok(c.stdout.includes('hello'));

    const l = runShoal(['list'], { root });
    assert.ok(l.stdout.split('\n')[0].startsWith('ID'), l.stdout);
    assert.match(l.stdout, new RegExp(`^${id}\\s+${s.pid}\\s+created\\s+${bundle}`, 'm'));
    const lj = JSON.parse(runShoal(['list', '--format', 'json'], { root }).stdout);
    assert.equal(lj.map((x: any) => [x.id, x.pid, x.status]), [[id, s.pid, 'created']]);

    const st = runShoal(['start', id], { root });
    assert.is(st.code, 0, st.stderr);
    await waitFor('marker after start', () => fs.existsSync(path.join(out, 'marker')));
    await waitFor('output after start', () => fs.readFileSync(path.join(work, 'stdout'), 'utf8').includes('hello'));
    assert.is(state(id, root).status, 'running');
    assert.is(JSON.parse(runShoal(['list', '--format', 'json'], { root }).stdout)[0].status, 'running');

    const k = runShoal(['kill', id, 'KILL'], { root });
    assert.is(k.code, 0, k.stderr);
    await waitFor('stopped', () => state(id, root).status === 'stopped');
    assert.is(state(id, root).pid, 0);
    const d = runShoal(['delete', id], { root });
    assert.is(d.code, 0, d.stderr);
    assert.is(runShoal(['state', id], { root }).code, 1);
    await assertNoTraces(id, root, bundle, dirs, s.pid);
  });
});

for (const sig of [undefined, 'TERM', '15', 'SIGTERM', '9']) {
  test(`kill ID ${sig ?? '(default)'} stops a running container`, async () => {
    await withCleanup(async (defer) => {
      const { root, work, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
      assert.is(shoalToFiles(['run', '-d', '-b', bundle, id], root, work).code, 0);
      const s = state(id, root);
      assert.is(s.status, 'running');
      const dirs = cgroupDirsOf(s.pid);
      const k = runShoal(['kill', id, ...(sig ? [sig] : [])], { root });
      assert.is(k.code, 0, k.stderr);
      await waitFor('stopped', () => state(id, root).status === 'stopped');
      assert.is(runShoal(['delete', id], { root }).code, 0);
      await assertNoTraces(id, root, bundle, dirs, s.pid);
    });
  });
}

test('delete of a created container works without --force', async () => {
  await withCleanup(async (defer) => {
    const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
    assert.is(shoalToFiles(['create', '-b', bundle, id], root, work).code, 0);
    const s = state(id, root);
    const dirs = cgroupDirsOf(s.pid);
    const d = runShoal(['delete', id], { root });
    assert.is(d.code, 0, d.stderr);
    await assertNoTraces(id, root, bundle, dirs, s.pid);
    assert.not.ok(fs.existsSync(path.join(out, 'marker')), 'deleting a created container must not run it');
  });
});

test('kill of a created container stops it without running the process; delete cleans up', async () => {
  await withCleanup(async (defer) => {
    const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
    assert.is(shoalToFiles(['create', '-b', bundle, id], root, work).code, 0);
    const s = state(id, root);
    const dirs = cgroupDirsOf(s.pid);
    const k = runShoal(['kill', id, '9'], { root });
    assert.is(k.code, 0, k.stderr);
    await waitFor('stopped', () => state(id, root).status === 'stopped');
    assert.is(runShoal(['delete', id], { root }).code, 0);
    await assertNoTraces(id, root, bundle, dirs, s.pid);
    assert.not.ok(fs.existsSync(path.join(out, 'marker')));
  });
});

test('run in the foreground forwards SIGTERM to the container and returns its exit status', async () => {
  await withCleanup(async (defer) => {
    const { root, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP.replace("'exit 0'", "'exit 7'")] });
    const { spawn } = await import('child_process');
    const child = spawn(process.execPath, [shoalBin(), '--root', root, 'run', '-b', bundle, id], { stdio: 'ignore' });
    defer(() => child.kill('SIGKILL'));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('container running', () => fs.existsSync(path.join(out, 'marker')));
    const pid = state(id, root).pid;
    child.kill('SIGTERM');
    assert.is(await exited, 7);
    await assertNoTraces(id, root, bundle, [], pid);
  });
});

test('run in the foreground: output, exit status passthrough, automatic delete', async () => {
  await withCleanup(async (defer) => {
    const { root, bundle, id } = setup(defer, { args: ['sh', '-c', 'echo out-line; echo err-line >&2; exit 3'] });
    const r = runShoal(['run', '--bundle', bundle, id], { root });
    assert.is(r.code, 3, r.stderr);
    assert.is(r.stdout, 'out-line\n');
    assert.ok(r.stderr.includes('err-line'));
    await assertNoTraces(id, root, bundle);
  });
});

test('run in the foreground: exit 0, and stdin reaches the container', async () => {
  await withCleanup(async (defer) => {
    const { root, bundle, id } = setup(defer, { args: ['sh', '-c', 'read x; echo got-$x'] });
    const r = runShoal(['run', '-b', bundle, id], { root, input: 'abc\n' });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'got-abc\n');
    await assertNoTraces(id, root, bundle);
  });
});

test('run in the foreground: killed by a signal exits 128+signal, --pid-file holds the pid', async () => {
  await withCleanup(async (defer) => {
    const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
    const pidFile = path.join(work, 'run.pid');
    const { spawn } = await import('child_process');
    const child = spawn(process.execPath, [shoalBin(), '--root', root, 'run', '-b', bundle, '--pid-file', pidFile, id], { stdio: 'ignore' });
    defer(() => child.kill('SIGKILL'));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('container running', () => fs.existsSync(path.join(out, 'marker')));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.is(state(id, root).pid, pid);
    assert.is(state(id, root).status, 'running');
    const dirs = cgroupDirsOf(pid);
    assert.is(runShoal(['kill', id, 'KILL'], { root }).code, 0);
    assert.is(await exited, 128 + 9);
    await assertNoTraces(id, root, bundle, dirs, pid);
  });
});

/** Mount points of the host's filesystems of a type (cgroup, cgroup2). */
function mountpointsOf(fstype: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` - ${fstype} `)).map((l) => l.split(' ')[4]);
}

test('the init joins its cgroups without moving a whole process: v1 by itself (tasks), cgroup2 by CLONE_INTO_CGROUP', async () => {
  // A write of a pid to cgroup.procs takes the kernel's global threadgroup lock, whose first use
  // waits for an RCU grace period; the init moving only itself, or clone3 placing it, do not.
  if (spawnSync('strace', ['-V']).status !== 0) return assert.unreachable('strace is missing (the harness installs it)');
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = setup(defer, { args: ['true'] });
    // The container sees its cgroups (binds of its directories on v1 and hybrid hosts).
    const cfgFile = path.join(bundle, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const log = path.join(work, 'strace');
    const r = spawnSync('strace', ['-f', '-qq', '-y', '-s', '64', '-e', 'trace=write,read,mkdir,mkdirat,clone,clone3,openat,mount,mount_setattr,rename,renameat2', '-e', 'signal=none', '-o', log,
      process.execPath, shoalBin(), '--root', root, 'run', '-b', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    // (strace splits a call that another traced process interrupts: match the call's start only)
    const trace = fs.readFileSync(log, 'utf8');
    // The cgroups are made while the init is set up: only the cgroup2 directory exists before the
    // plan goes out; the v1 ones come after it, then the runtime's 'K'; the init joins after that.
    const lines = trace.split('\n');
    const first = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const last = (re: RegExp) => lines.length - 1 - [...lines].reverse().findIndex((l) => re.test(l));
    const planSent = first(/write\(\d+<(socket|UNIX)[^>]*>, ".{0,40}SHP2/);
    const v1Mkdir = /mkdir\("\/sys\/fs\/cgroup\/(?!unified\/)[^"]*\/[^/"]+", /;
    const kSent = first(/write\(\d+<(socket|UNIX)[^>]*>, "K", 1(\)| <unfinished)/);
    const kRead = first(/read\(\d+<(socket|UNIX)[^>]*>, "K", 1\)|<\.\.\. read resumed>"K", 1\)/);
    const joined = first(new RegExp(`write\\(\\d+<[^>]*${id}/tasks>, "0", 1`));
    assert.ok(planSent >= 0 && kSent >= 0 && kRead >= 0 && joined >= 0, `plan ${planSent}, K ${kSent}/${kRead}, join ${joined}`);
    const v2 = mountpointsOf('cgroup2');
    if (v2.length) assert.ok(first(new RegExp(`mkdir\\("${v2[0]}/${id}"`)) < planSent, 'the cgroup2 directory exists before the plan goes out');
    assert.ok(first(v1Mkdir) > planSent, 'the v1 directories are made after the plan went out');
    assert.ok(kSent > last(v1Mkdir), "'K' follows the last of them");
    // 'D' says the directories exist (before the limits): the init may bind them from then on.
    const dSent = first(/write\(\d+<(socket|UNIX)[^>]*>, "D", 1(\)| <unfinished)/);
    const dRead = first(/read\(\d+<(socket|UNIX)[^>]*>, "D", 1\)|<\.\.\. read resumed>"D", 1\)/);
    assert.ok(dSent > last(v1Mkdir) && dSent < kSent, `'D' between the last mkdir and 'K' (${dSent})`);
    const bind = first(new RegExp(`mount\\("/sys/fs/cgroup/(?!unified/)[^"]*${id}", `));
    assert.ok(bind > dRead && dRead > 0, `the init binds its cgroup directories after the helper read 'D' (${dRead}, ${bind})`);
    assert.ok(joined > kRead, 'the init joins its v1 cgroups after the helper read the K');
    const v1 = mountpointsOf('cgroup');
    for (const m of v1) {
      assert.match(trace, new RegExp(`write\\(\\d+<${m}/[^>]*${id}/tasks>, "0", 1`), `the init writes 0 to its tasks file under ${m}`);
      // The helper opens the tasks file of a v1 hierarchy at once (the plan says which are v1).
      assert.not.match(trace, new RegExp(`openat\\([^,]*, "${m}/[^"]*${id}/cgroup\\.procs", O_WRONLY`), `no cgroup.procs opened for writing under ${m}`);
    }
    const devicesAllow = v1.find((m) => fs.existsSync(`${m}/devices.allow`));
    if (devicesAllow) {
      // The device rules are written one per write(2), all through one descriptor.
      const opens = lines.filter((l) => new RegExp(`openat\\([^,]*, "${devicesAllow}/[^"]*${id}/devices\\.allow"`).test(l)).length;
      const rules = lines.filter((l) => new RegExp(`write\\(\\d+<${devicesAllow}/[^>]*${id}/devices\\.allow>, "`).test(l)).length;
      assert.is(opens, 1, 'devices.allow is opened once');
      assert.ok(rules > 5, `${rules} rules written to it`);
    }
    if (v2.length) assert.match(trace, /clone3\(\{flags=CLONE_NEWNS\|[^}]*CLONE_INTO_CGROUP[^}]*cgroup=\d+/, 'the init is cloned into its cgroup2 cgroup');
    assert.not.match(trace, new RegExp(`write\\(\\d+<[^>]*${id}/cgroup\\.procs>`), 'no pid written to a cgroup.procs of the container');
    // The state is written twice: with the cgroup before it exists (renamed into place), then
    // created with the pid, swapped with the first (a rename over it makes ext4 write it at once).
    const tmpToState = `\\("[^"]*/${id}/\\.state\\.\\d+", "[^"]*/${id}/state\\.json"`;
    const renames = lines.filter((l) => new RegExp(`rename${tmpToState}`).test(l)).length;
    const swaps = lines.filter((l) => new RegExp(`renameat2\\(AT_FDCWD(<[^>]*>)?, "[^"]*/${id}/\\.state\\.\\d+", AT_FDCWD(<[^>]*>)?, "[^"]*/${id}/state\\.json", RENAME_EXCHANGE\\) = 0`).test(l)).length;
    assert.is(renames, 1, 'one state written by a rename, into the fresh directory');
    assert.is(swaps, 1, 'one state written by an exchange with the old one');
    // The init opens the rootfs once for all its mounts (each resolved inside it), and makes a
    // missing mount point in its parent rather than walking the path from the top.
    const rootfs = path.join(bundle, 'rootfs');
    const rootOpens = lines.filter((l) => l.includes(`, "${rootfs}", O_RDONLY|O_CLOEXEC|O_PATH|O_DIRECTORY`)).length;
    assert.is(rootOpens, 1, 'the rootfs opened once for the mounts');
    assert.ok(lines.some((l) => /mkdirat\(/.test(l)), 'mount points made');
    assert.not.ok(lines.some((l) => /mkdirat\(.*= -1 EEXIST/.test(l)), 'no walk through existing directories');
    // The cgroup binds get their flags in one recursive mount_setattr, not a remount each.
    if (v1.length) {
      const attrs = first(/mount_setattr\(\d+<[^>]*\/sys\/fs\/cgroup>, "", AT_EMPTY_PATH\|AT_RECURSIVE, \{attr_set=MOUNT_ATTR_RDONLY\|MOUNT_ATTR_NOSUID\|MOUNT_ATTR_NODEV\|MOUNT_ATTR_NOEXEC/);
      assert.ok(attrs > bind, `one recursive mount_setattr after the cgroup binds (${attrs})`);
      const remounts = lines.slice(bind, attrs).filter((l) => /mount\(NULL, [^)]*MS_REMOUNT/.test(l)).length;
      assert.is(remounts, 0, 'no remount of a cgroup bind');
    }
    await assertNoTraces(id, root, bundle);
  });
});

test('the helper makes the network namespace ahead and the init inherits it; without one in the config the init stays in the host\'s', async () => {
  if (spawnSync('strace', ['-V']).status !== 0) return assert.unreachable('strace is missing (the harness installs it)');
  const hostNet = fs.readlinkSync('/proc/self/ns/net');
  for (const own of [true, false]) {
    await withCleanup(async (defer) => {
      const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', 'readlink /proc/self/ns/net > /out/net'] });
      if (!own) {
        const cfgPath = path.join(bundle, 'config.json');
        const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
        cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
        fs.writeFileSync(cfgPath, JSON.stringify(cfg));
      }
      const log = path.join(work, 'strace');
      const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=unshare,clone3', '-e', 'signal=none', '-o', log,
        process.execPath, shoalBin(), '--root', root, 'run', '-b', bundle, id], { encoding: 'utf8', timeout: 60_000 });
      assert.is(r.status, 0, r.stderr);
      // (strace splits a call another traced process interrupts: the unshare takes a while)
      const trace = joinStrace(fs.readFileSync(log, 'utf8'));
      const clone = /clone3\(\{flags=CLONE_NEWNS\|[^}]*\}/.exec(trace)?.[0] ?? '';
      assert.ok(clone, 'the init is cloned with new namespaces');
      assert.not.ok(clone.includes('CLONE_NEWNET'), `the clone makes no network namespace: ${clone}`);
      const net = fs.readFileSync(path.join(out, 'net'), 'utf8').trim();
      if (own) {
        assert.match(trace, /unshare\(CLONE_NEWNET\)\s*= 0/, 'the helper made a network namespace before its plan came');
        assert.is.not(net, hostNet, "the container's network namespace is its own");
      } else {
        assert.not.match(trace, /unshare\(CLONE_NEWNET/, 'no network namespace made');
        assert.is(net, hostNet, "the container shares the host's network namespace");
      }
      await assertNoTraces(id, root, bundle);
    });
  }
});

test('foreground run: the process goes on right after it is created, the helper holds the namespaces, reports the exit on the sync channel, and has ended when run returns', async () => {
  // The last reference to a namespace tears it down; held by the helper, that happens at the
  // helper's exit, after it told shoal the status, not before the init's exit is known.
  if (spawnSync('strace', ['-V']).status !== 0) return assert.unreachable('strace is missing (the harness installs it)');
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = setup(defer, { args: ['sh', '-c', 'exit 7'] });
    const log = path.join(work, 'strace');
    const r = spawnSync('strace', ['-f', '-qq', '-s', '64', '-e', 'trace=openat,sendto,wait4,exit_group,write,read', '-e', 'signal=none', '-o', log,
      process.execPath, shoalBin(), '--root', root, 'run', '-b', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 7, r.stderr);
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    // (strace may split a call that another traced process interrupts: match its start only)
    const opened = lines.findIndex((l) => /openat\(\d+, "\d+\/ns\/mnt", O_RDONLY\|O_CLOEXEC/.test(l));
    assert.ok(opened >= 0, 'the helper opens the init\'s mount namespace');
    const helper = lines[opened].split(' ')[0];
    const mine = lines.filter((l) => l.startsWith(`${helper} `));
    const at = (re: RegExp) => mine.findIndex((l) => re.test(l));
    for (const ns of ['pid', 'net', 'ipc', 'uts', 'cgroup']) assert.ok(at(new RegExp(`"\\d+/ns/${ns}"`)) >= 0, `the helper holds the ${ns} namespace`);
    const reaped = at(/(wait4\(\d+,|wait4 resumed>).*\) = \d+$/); // (strace may split the call)
    const reported = at(/sendto\(\d+, "EXIT 7\\n", 7, MSG_NOSIGNAL/);
    const ended = at(/exit_group\(7/);
    assert.ok(reaped > at(/"\d+\/ns\/mnt"/), 'the namespaces are held before the init ends');
    assert.ok(reported > reaped, `the status is reported after the init was reaped (${reaped}, ${reported})`);
    assert.ok(ended > reported, 'and the helper ends after the report');
    // No round trip after READY: nobody sends the init a 'G', nobody waits for one.
    assert.not.ok(lines.some((l) => /write\(\d+, "G", 1\)/.test(l)), 'no go-ahead written');
    assert.not.ok(lines.some((l) => /read\(\d+, "G", 1\)/.test(l)), 'no go-ahead read');
    // `run` waited for the helper: no process of the container's remains.
    assert.not.ok(fs.existsSync(`/proc/${helper}`), 'the helper has ended when run returns');
    await assertNoTraces(id, root, bundle);
  });
});

test('foreground run with a terminal: shoal attaches to the pty before the process goes on, and proxies it', async () => {
  await withCleanup(async (defer) => {
    const { root, bundle, id } = setup(defer, { terminal: true, args: ['sh', '-c', 'tty; echo from-the-tty; exit 5'] });
    const r = runInPty([process.execPath, shoalBin(), '--root', root, 'run', '-b', bundle, id]);
    assert.is(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout, /^\/dev\/pts\/\d+$/m, JSON.stringify(r.stdout));
    assert.match(r.stdout, /^from-the-tty$/m, JSON.stringify(r.stdout));
    await assertNoTraces(id, root, bundle);
  });
});

test('run -d: returns at once with the container running; kill and delete clean up', async () => {
  await withCleanup(async (defer) => {
    const { root, work, out, bundle, id } = setup(defer, { args: ['sh', '-c', LOOP] });
    const pidFile = path.join(work, 'd.pid');
    const r = shoalToFiles(['run', '-d', '--pid-file', pidFile, '-b', bundle, id], root, work);
    assert.is(r.code, 0, r.stderr);
    const s = state(id, root);
    assert.is(s.status, 'running');
    assert.is(Number(fs.readFileSync(pidFile, 'utf8')), s.pid);
    await waitFor('marker', () => fs.existsSync(path.join(out, 'marker')));
    const dirs = cgroupDirsOf(s.pid);
    assert.ok(dirs.length > 0);
    assert.is(runShoal(['kill', id, 'SIGKILL'], { root }).code, 0);
    await waitFor('stopped', () => state(id, root).status === 'stopped');
    assert.is(runShoal(['delete', id], { root }).code, 0);
    await assertNoTraces(id, root, bundle, dirs, s.pid);
  });
});

test('a container whose process exits by itself is stopped and deletable', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = setup(defer, { args: ['sh', '-c', 'echo bye'] });
    assert.is(shoalToFiles(['run', '-d', '-b', bundle, id], root, work).code, 0);
    await waitFor('stopped', () => state(id, root).status === 'stopped');
    assert.ok(fs.readFileSync(path.join(work, 'stdout'), 'utf8').includes('bye'));
    assert.is(runShoal(['delete', id], { root }).code, 0);
    await assertNoTraces(id, root, bundle);
  });
});

test.run();
