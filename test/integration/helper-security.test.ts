/*
 * The init helper's protections and process attributes, through the CLI with real containers:
 * the sealed memfd copy of shoal-init (CVE-2019-5736), no fd or signal disposition leaking from
 * the caller, the seccomp notify listener, ioPriority / scheduler, time namespace offsets, and
 * setup failures that reach the caller as clear errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, removeRoot, Defer } from '../lib/shoal';
import { makeBundle, BundleOverrides } from '../lib/rootfs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A state root, a work dir and a bundle, all removed at the end of the test. */
function env(defer: Defer, overrides: BundleOverrides = {}) {
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-helper-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const bundle = makeBundle(overrides, { dir: path.join(work, 'bundle') });
  return { root, work, bundle, id: uniqueId('hs') };
}

/** `run -d` / `create` leave the container holding our stdio: give it files, never pipes. */
function detached(args: string[], root: string, work: string): { code: number; stderr: string } {
  const out = fs.openSync(path.join(work, 'out'), 'a');
  const errPath = path.join(work, 'err');
  fs.writeFileSync(errPath, '');
  const err = fs.openSync(errPath, 'a');
  try {
    const r = spawnSync(process.execPath, [shoalBin(), '--root', root, ...args], { stdio: ['ignore', out, err], timeout: 30_000 });
    return { code: r.status ?? -1, stderr: fs.readFileSync(errPath, 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
}

/** The host pid of a container's init. */
function initPid(id: string, root: string): number {
  return JSON.parse(runShoal(['state', id], { root }).stdout).pid;
}

/** Whether a command exists on the host. */
function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

test('the init runs from a sealed memfd: /proc/<pid>/exe is not the host binary and cannot be written', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, { process: { args: ['sleep', '60'] } });
    const c = detached(['create', '-b', e.bundle, e.id], e.root, e.work);
    assert.is(c.code, 0, c.stderr);
    const pid = initPid(e.id, e.root);
    const exe = fs.readlinkSync(`/proc/${pid}/exe`);
    assert.match(exe, /memfd:/, `exe is ${exe}`);
    assert.not.match(exe, /Release\/shoal-init$/);
    assert.is(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'shoal:[init]');
    assert.throws(() => fs.openSync(`/proc/${pid}/exe`, 'r+'), /ETXTBSY|EPERM|EACCES/);
    // After start the container process itself runs; its exe is the container's binary.
    assert.is(runShoal(['start', e.id], { root: e.root }).code, 0);
    for (let i = 0; i < 100 && fs.readlinkSync(`/proc/${pid}/exe`).includes('memfd:'); i++) await sleep(20);
    assert.not.match(fs.readlinkSync(`/proc/${pid}/exe`), /memfd:/);
  });
});

test('no fd and no ignored signal of the caller reaches the container process', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, { process: { args: ['sh', '-c', 'ls /proc/self/fd | tr "\\n" " "; echo; grep -E "^Sig(Ign|Blk)" /proc/self/status'] } });
    const extra = [fs.openSync('/etc/hostname', 'r'), fs.openSync('/etc/passwd', 'r')];
    defer(() => extra.forEach((fd) => fs.closeSync(fd)));
    // The CLI gets fds 3 and 4 and ignores SIGINT/SIGUSR1 (trap in the shell that execs it).
    const cmd = `trap '' INT USR1; exec "${process.execPath}" "${shoalBin()}" --root "${e.root}" run -b "${e.bundle}" ${e.id}`;
    const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe', extra[0], extra[1]], encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    const [fds, ...sig] = r.stdout.trim().split('\n');
    // 0-2, plus the directory ls itself opens.
    assert.equal(fds.trim().split(/\s+/).map(Number).filter((n) => n > 3), [], `fds: ${fds}`);
    assert.ok(sig.some((l) => /^SigBlk:\s+0+$/.test(l)), sig.join('|'));
    // busybox sh may ignore SIGQUIT itself; what we check is that the caller's ignores are gone.
    const ign = BigInt('0x' + (sig.find((l) => l.startsWith('SigIgn'))?.split(/\s+/)[1] ?? '0'));
    assert.is(ign & ((1n << 1n) | (1n << 9n)), 0n, `SigIgn ${ign.toString(16)}`);
  });
});

test('no fd of the caller reaches the container where close_range(CLOSE_RANGE_CLOEXEC) fails (kernels before 5.11)', async () => {
  // The container's seccomp filter is loaded before the init marks its fds: an ENOSYS from
  // close_range stands in for an older kernel, and the init falls back to /proc/self/fd.
  await withCleanup(async (defer) => {
    const e = env(defer, {
      process: { args: ['sh', '-c', 'ls /proc/self/fd | tr "\\n" " "'] },
      linux: { seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['close_range'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] } },
    });
    const extra = [fs.openSync('/etc/hostname', 'r'), fs.openSync('/etc/passwd', 'r')];
    defer(() => extra.forEach((fd) => fs.closeSync(fd)));
    const r = spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', '-b', e.bundle, e.id], { stdio: ['ignore', 'pipe', 'pipe', extra[0], extra[1]], encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    // 0-2, plus the directory ls itself opens.
    assert.equal(r.stdout.trim().split(/\s+/).map(Number).filter((n) => n > 3), [], `fds: ${r.stdout}`);
  });
});

test('a hook run by the init gets stdio only: neither the preserved fds nor stray ones of the caller', async () => {
  await withCleanup(async (defer) => {
    const list = 'ls /proc/self/fd | tr "\\n" " "; echo';
    const e = env(defer, {
      process: { args: ['sh', '-c', list] },
      hooks: { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', list] }] },
    });
    // The CLI gets fds 3 and 4 and passes them on (--preserve-fds 2); bash leaves fd 100 open
    // without close-on-exec, a stray one.
    const cmd = `exec 3</etc/hostname 4</etc/passwd 100</etc/hosts; exec "${process.execPath}" "${shoalBin()}" --root "${e.root}" run --preserve-fds 2 -b "${e.bundle}" ${e.id}`;
    const r = spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    const [hook, proc] = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
    // Each list also has the directory ls opens: the lowest free number.
    assert.equal(hook, [0, 1, 2, 3], `the hook's fds: ${r.stdout}`);
    assert.equal(proc, [0, 1, 2, 3, 4, 5], `the process's fds: ${r.stdout}`);
  });
});

test('hooks run by the runtime (prestart, poststart, poststop) get stdio only, not what the caller left open', async () => {
  await withCleanup(async (defer) => {
    const e0 = env(defer);
    const hook = (stage: string) => ({ path: '/bin/sh', args: ['sh', '-c', `ls /proc/self/fd | tr "\\n" " " > ${e0.work}/${stage}`] });
    const e = env(defer, { process: { args: ['true'] }, hooks: { prestart: [hook('prestart')], poststart: [hook('poststart')], poststop: [hook('poststop')] } });
    // bash leaves fds 100 and 101 open without close-on-exec in the CLI, as a careless caller
    // would. (Low ones would not do: Node starts with the fds below 16 or so close-on-exec.)
    const cmd = `exec 100</etc/hostname 101</etc/passwd; exec "${process.execPath}" "${shoalBin()}" --root "${e.root}" run -b "${e.bundle}" ${e.id}`;
    const r = spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    for (const stage of ['prestart', 'poststart', 'poststop']) {
      // 0-2, plus the directory ls opens.
      assert.is(fs.readFileSync(path.join(e0.work, stage), 'utf8').trim(), '0 1 2 3', stage);
    }
  });
});

test('seccomp notify: the listener receives the container state and the notify fd', async () => {
  if (!have('python3')) return console.log('  (skipped: python3 is needed to receive SCM_RIGHTS)');
  await withCleanup(async (defer) => {
    const sock = path.join(os.tmpdir(), `shoal-l-${process.pid}-${Date.now()}.sock`);
    defer(() => fs.rmSync(sock, { force: true }));
    const e = env(defer, {
      process: { args: ['sh', '-c', 'echo started'] },
      annotations: { 'org.test': 'yes' },
      linux: {
        seccomp: {
          defaultAction: 'SCMP_ACT_ALLOW',
          listenerPath: sock,
          listenerMetadata: 'meta "quoted"',
          syscalls: [{ names: ['getpgid'], action: 'SCMP_ACT_NOTIFY' }],
        },
      },
    });
    const out = path.join(e.work, 'listener.json');
    const script = [
      'import socket, os, sys, array, json',
      `s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)}); s.listen(1)`,
      'print("ready", flush=True)',
      'c, _ = s.accept()',
      'fds = array.array("i")',
      'msg, anc, _, _ = c.recvmsg(1 << 20, socket.CMSG_LEN(4 * fds.itemsize))',
      'for lvl, typ, data in anc:',
      '    if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS: fds.frombytes(data[: len(data) - len(data) % 4])',
      'link = os.readlink("/proc/self/fd/%d" % fds[0]) if fds else ""',
      `open(${JSON.stringify(out)}, "w").write(json.dumps({"msg": json.loads(msg), "link": link}))`,
    ].join('\n');
    const py = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    defer(() => py.kill('SIGKILL'));
    await new Promise<void>((resolve) => py.stdout.once('data', () => resolve()));
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /started/);
    for (let i = 0; i < 250 && !fs.existsSync(out); i++) await sleep(20);
    const got = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.match(got.link, /seccomp/, `received fd: ${got.link}`);
    assert.equal(got.msg.fds, ['seccompFd']);
    assert.is(got.msg.metadata, 'meta "quoted"');
    assert.is(got.msg.state.id, e.id);
    assert.is(got.msg.state.bundle, e.bundle);
    assert.is(got.msg.state.annotations['org.test'], 'yes');
    assert.ok(got.msg.pid > 0 && got.msg.pid === got.msg.state.pid);
  });
});

test('ioPriority and scheduler are applied to the process (seen from the host)', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, {
      process: { args: ['sleep', '60'], ioPriority: { class: 'IOPRIO_CLASS_BE', priority: 6 }, scheduler: { policy: 'SCHED_BATCH', nice: 7 } },
    });
    const c = detached(['run', '-d', '-b', e.bundle, e.id], e.root, e.work);
    assert.is(c.code, 0, c.stderr);
    const pid = initPid(e.id, e.root);
    const sched = fs.readFileSync(`/proc/${pid}/sched`, 'utf8');
    assert.match(sched, /^policy\s+:\s+3$/m, 'SCHED_BATCH');
    assert.is(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16], '7', 'nice');
    if (have('ionice')) assert.match(spawnSync('ionice', ['-p', String(pid)], { encoding: 'utf8' }).stdout, /best-effort: prio 6/);
  });
});

test('time namespace offsets are visible inside', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, {
      process: { args: ['cat', '/proc/uptime'] },
      linux: {
        namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'ipc' }, { type: 'network' }, { type: 'time' }],
        timeOffsets: { boottime: { secs: 10 * 86400 }, monotonic: { secs: 10 * 86400 } },
      },
    });
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.is(r.code, 0, r.stderr);
    const inside = Number(r.stdout.split(' ')[0]);
    const host = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    assert.ok(inside - host > 10 * 86400 - 60, `uptime inside ${inside}, host ${host}`);
  });
});

test('setup failures reach the caller as clear errors', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, {
      process: { args: ['true'] },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        {
          destination: '/x',
          type: 'bind',
          source: '/nonexistent-shoal-source',
          options: ['bind', 'idmap'],
          uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
          gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
        },
      ],
    });
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.ok(r.code > 0);
    assert.match(r.stderr, /idmap mount \/nonexistent-shoal-source: ENOENT/);
    assert.not.ok(fs.existsSync(path.join(e.root, e.id)), 'state removed');
    const s = env(defer, { process: { args: ['true'], scheduler: { policy: 'SCHED_OTHER', nice: 40 } } });
    assert.match(runShoal(['run', '-b', s.bundle, s.id], { root: s.root }).stderr, /scheduler\.nice/);
  });
});

test.run();
