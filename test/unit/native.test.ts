/* Direct tests of the native addon: fd passing, pidfds, ptys and the shape of its errors. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { native, helperPath, probePath, repoRoot, NativeNotFoundError, ExitInfo } from '../../shim/src/native';

/** A FIFO opened read-write: a real pipe fd that Node can read and write without pipe(2). */
function openFifo(): { fd: number; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-native-'));
  const p = path.join(dir, 'fifo');
  const r = spawnSync('mkfifo', [p]);
  assert.is(r.status, 0, 'mkfifo');
  return { fd: fs.openSync(p, fs.constants.O_RDWR), dir };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Reap a child (a spawned one, or one adopted as subreaper) through a pidfd, waiting up to 5 s. */
async function reapChild(pid: number): Promise<ExitInfo | null> {
  const n = native();
  const fd = n.pidfdOpen(pid);
  try {
    let info = n.pidfdWaitExit(fd);
    for (let i = 0; info === null && i < 100; i++) {
      await sleep(50);
      info = n.pidfdWaitExit(fd);
    }
    return info;
  } finally {
    n.closeFd(fd);
  }
}

test('repoRoot finds binding.gyp', () => {
  assert.ok(fs.existsSync(path.join(repoRoot(), 'binding.gyp')));
});

test('socketpair gives two CLOEXEC fds', () => {
  const n = native();
  const [a, b] = n.socketpair();
  try {
    assert.ok(a >= 0 && b >= 0 && a !== b);
    assert.ok(n.fdIsCloexec(a));
    assert.ok(n.fdIsCloexec(b));
  } finally {
    n.closeFd(a);
    n.closeFd(b);
  }
});

test('sendFd/recvFd carries a pipe fd and its message', () => {
  const n = native();
  const [a, b] = n.socketpair();
  const { fd: pipe, dir } = openFifo();
  let got = -1;
  try {
    n.sendFd(a, pipe, 'console:abc');
    const r = n.recvFd(b);
    got = r.fd;
    assert.is(r.data, 'console:abc');
    assert.is.not(r.fd, pipe);
    assert.ok(n.fdIsCloexec(r.fd), 'received fd is CLOEXEC');
    // Bytes written through the received fd come out of the original: same open file.
    fs.writeSync(r.fd, 'through the socket');
    const buf = Buffer.alloc(64);
    const len = fs.readSync(pipe, buf, 0, buf.length, null);
    assert.is(buf.subarray(0, len).toString(), 'through the socket');
  } finally {
    if (got >= 0) fs.closeSync(got);
    fs.closeSync(pipe);
    n.closeFd(a);
    n.closeFd(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('recvFd reports a closed peer as ECONNRESET', () => {
  const n = native();
  const [a, b] = n.socketpair();
  n.closeFd(a);
  try {
    n.recvFd(b);
    assert.unreachable('recvFd should throw');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ECONNRESET');
  } finally {
    n.closeFd(b);
  }
});

test('pidfdSendSignal kills a spawned sleep', async () => {
  const n = native();
  const child = spawn('sleep', ['100'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
  const fd = n.pidfdOpen(child.pid!);
  try {
    assert.ok(n.fdIsCloexec(fd));
    // Still running: a WNOHANG wait reports nothing and reaps nothing.
    assert.is(n.pidfdWaitExit(fd), null);
    n.pidfdSendSignal(fd, os.constants.signals.SIGKILL);
    assert.is(await exited, 'SIGKILL');
  } finally {
    n.closeFd(fd);
  }
});

test('pidfdWaitExit reaps an orphan adopted as subreaper', async () => {
  const n = native();
  n.setChildSubreaper(true);
  try {
    // The shell exits at once; its background child is re-parented to us, outside libuv's view.
    const r = spawnSync('sh', ['-c', 'sleep 0.3 & echo $!'], { encoding: 'utf8' });
    const pid = Number(r.stdout.trim());
    assert.ok(pid > 0, `pid from sh: ${r.stdout}`);
    assert.equal(await reapChild(pid), { status: 0, signal: null });
  } finally {
    n.setChildSubreaper(false);
  }
});

test('pidfdWaitExit on a non-child is ECHILD', () => {
  const n = native();
  const fd = n.pidfdOpen(process.ppid);
  try {
    n.pidfdWaitExit(fd);
    assert.unreachable('should throw');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    assert.is(err.code, 'ECHILD');
    assert.is(err.syscall, 'waitid');
  } finally {
    n.closeFd(fd);
  }
});

test('errors carry code, errno and syscall', () => {
  const n = native();
  try {
    n.pidfdOpen(0x3ffffff0);
    assert.unreachable('should throw');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    assert.instance(err, Error);
    assert.is(err.code, 'ESRCH');
    assert.is(err.errno, os.constants.errno.ESRCH);
    assert.is(err.syscall, 'pidfd_open');
  }
  assert.throws(() => n.closeFd(1 << 20), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
  assert.throws(() => n.fdIsCloexec(1 << 20), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
  assert.throws(() => n.pidfdOpen('1' as unknown as number), (e: Error) => e instanceof TypeError);
  assert.throws(() => n.pidfdOpen(-1), (e: Error) => e instanceof TypeError);
});

test('file calls with the errno as a value: mkdir, rmdir, unlink, rename, writeFile, writeAll, writeValues, readLatin1', async () => {
  const n = native();
  const E = os.constants.errno;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-native-fs-'));
  try {
    const d = path.join(dir, 'd');
    assert.is(n.mkdirErrno(d, 0o700), 0);
    assert.is((fs.statSync(d).mode & 0o777).toString(8), (0o700 & ~process.umask()).toString(8));
    assert.is(n.mkdirErrno(d, 0o700), E.EEXIST);
    assert.is(n.mkdirErrno(path.join(dir, 'no', 'd'), 0o700), E.ENOENT);

    const f = path.join(d, 'f');
    assert.is(n.writeFileErrno(f, 'h\u00e9llo', 0o600), 0, 'created');
    assert.is(fs.readFileSync(f, 'utf8'), 'h\u00e9llo', 'UTF-8');
    assert.is((fs.statSync(f).mode & 0o777).toString(8), (0o600 & ~process.umask()).toString(8));
    assert.is(n.writeFileErrno(f, 'x', 0o600), 0, 'truncated');
    assert.is(fs.readFileSync(f, 'utf8'), 'x');
    assert.is(n.writeFileErrno(path.join(dir, 'no', 'f'), 'x', 0o600), E.ENOENT);

    assert.is(n.rmdirErrno(d), E.ENOTEMPTY);
    assert.is(n.renameErrno(f, path.join(d, 'g')), 0);
    assert.is(n.renameErrno(f, path.join(d, 'g')), E.ENOENT);
    assert.is(n.unlinkErrno(path.join(d, 'g')), 0);
    assert.is(n.unlinkErrno(path.join(d, 'g')), E.ENOENT);
    assert.is(n.rmdirErrno(d), 0);
    assert.is(n.rmdirErrno(d), E.ENOENT);

    // writeValues: one write(2) per value on one descriptor (a regular file shows them in a row);
    // a failure names the value's index, -1 for the open.
    const v = path.join(dir, 'values');
    fs.writeFileSync(v, '');
    assert.is(n.writeValues(v, ['a', 'b\u00e9']), 0);
    assert.is(fs.readFileSync(v, 'utf8'), 'ab\u00e9');
    assert.equal(n.writeValues(path.join(dir, 'none'), ['a']), [-1, E.ENOENT], 'never created');
    assert.equal(n.writeValues('/dev/full', ['a', 'b']), [0, E.ENOSPC]);

    // writeAll: strings as UTF-8 and bytes, all of them (more than a pipe holds: it waits for
    // the reader); a closed reader is EPIPE, as a value.
    const [r, w] = n.pipe();
    const child = spawn('sh', ['-c', 'wc -c <&3'], { stdio: ['ignore', 'pipe', 'inherit', r] });
    n.closeFd(r);
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    assert.is(n.writeAllErrno(w, 'z'.repeat(200_000) + '\u00e9'), 0);
    assert.is(n.writeAllErrno(w, new Uint8Array([1, 2, 3])), 0);
    n.closeFd(w);
    await new Promise<void>((resolve) => child.on('exit', () => resolve()));
    assert.is(out.trim(), String(200_005));
    const [r2, w2] = n.pipe();
    n.closeFd(r2);
    assert.is(n.writeAllErrno(w2, 'x'), E.EPIPE);
    n.closeFd(w2);

    // readLatin1: a char per byte (the caller decodes UTF-8 lines), '' at EOF, EAGAIN as a value
    // on an empty non-blocking fd.
    const [r3, w3] = n.pipe();
    assert.is(n.writeAllErrno(w3, 'ok \u00e9\n'), 0);
    assert.is(n.readLatin1(r3, 2), 'ok', 'at most max bytes');
    assert.is(n.readLatin1(r3, 4096), ' \u00c3\u00a9\n');
    n.closeFd(w3);
    assert.is(n.readLatin1(r3, 4096), '', 'EOF');
    n.closeFd(r3);
    const fifo = openFifo();
    try {
      const nb = fs.openSync(path.join(fifo.dir, 'fifo'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      assert.is(n.readLatin1(nb, 16), E.EAGAIN);
      fs.closeSync(nb);
    } finally {
      fs.closeSync(fifo.fd);
      fs.rmSync(fifo.dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ptsname and setWinsize on a fresh pty master', () => {
  const n = native();
  const master = fs.openSync('/dev/ptmx', fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  try {
    assert.match(n.ptsname(master), /^\/dev\/pts\/\d+$/);
    n.setWinsize(master, 40, 120);
  } finally {
    fs.closeSync(master);
  }
  assert.throws(() => n.ptsname(0x7fff), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
});

test('prctlSetName accepts a stage name', () => {
  native().prctlSetName('shoal-test');
});

test('spawnHelper: fds in place (-1 is /dev/null), the sync socket last, cwd, empty env, default signals', async () => {
  const n = native();
  const { fd: out, dir } = openFifo();
  try {
    // The child reports its fds, cwd, environment and ignored/blocked signal masks, then echoes
    // one line from the sync socket back through it.
    const script = [
      'for f in 0 1 2 3; do printf "%s " "$(readlink /proc/$$/fd/$f)"; done; echo',
      'echo "cwd=$(pwd) env=$(env | wc -l)"',
      'grep -E "^Sig(Ign|Blk)" /proc/self/status | tr "\\n" " "; echo',
      'read line <&3; echo "got $line" >&3',
    ].join('; ');
    const r = n.spawnHelper('/bin/sh', ['-c', script], [-1, out, out], '/tmp');
    assert.ok(r.pid > 0 && r.pidfd >= 0 && r.sync >= 0);
    assert.ok(n.fdIsCloexec(r.sync), 'the parent end is CLOEXEC');
    fs.writeSync(r.sync, 'hello\n');
    let info = null;
    for (let i = 0; i < 200 && !info; i++) {
      info = n.pidfdWaitExit(r.pidfd);
      if (!info) await sleep(10);
    }
    assert.equal(info, { status: 0, signal: null });
    const echo = Buffer.alloc(64);
    const got = fs.readSync(r.sync, echo, 0, 64, null);
    assert.is(echo.subarray(0, got).toString(), 'got hello\n');
    n.closeFd(r.sync);
    n.closeFd(r.pidfd);
    const buf = Buffer.alloc(4096);
    const text = buf.subarray(0, fs.readSync(out, buf, 0, 4096, null)).toString();
    const [fdsLine, envLine, sigLine] = text.split('\n');
    const [fd0, fd1, fd2, fd3] = fdsLine.trim().split(' ');
    assert.is(fd0, '/dev/null');
    assert.is(fd1, fd2, 'stdout and stderr are the same fifo');
    assert.match(fd1, /fifo/);
    assert.match(fd3, /^socket:/);
    // sh itself sets PWD, SHLVL and _ : nothing came from this process's environment.
    assert.match(envLine, /^cwd=\/tmp env=[0-3]$/, text);
    // Node ignores SIGPIPE; glibc's posix_spawn leaves its own signals 32 and 33 ignored (the
    // helper resets those before the container's execve).
    assert.match(sigLine, /SigBlk:\s+0+ SigIgn:\s+0+(180000000)?\s*$/, sigLine);
  } finally {
    fs.closeSync(out);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sealedCopy + spawnHelper(exeFd): the child runs from the sealed memfd, which cannot be written', async () => {
  const n = native();
  const mfd = n.sealedCopy('/bin/sleep');
  try {
    assert.ok(n.fdIsCloexec(mfd));
    assert.throws(() => fs.writeSync(mfd, 'x', 0), /EPERM/, 'F_SEAL_WRITE');
    const r = n.spawnHelper('/bin/sleep', ['5'], [-1, -1, -1], '/', mfd);
    try {
      assert.match(fs.readlinkSync(`/proc/${r.pid}/exe`), /^\/memfd:shoal-init/);
      // spawnHelper returns once the exec began; the new argv shows up a moment later.
      let cmdline = '';
      for (let i = 0; i < 100 && !cmdline; i++) {
        cmdline = fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8');
        if (!cmdline) await sleep(5);
      }
      assert.is(cmdline.split('\0')[0], '/bin/sleep', 'argv[0] is the file name');
    } finally {
      n.pidfdSendSignal(r.pidfd, 9);
      for (let i = 0; i < 100 && !n.pidfdWaitExit(r.pidfd); i++) await sleep(10);
      n.closeFd(r.pidfd);
      n.closeFd(r.sync);
    }
  } finally {
    n.closeFd(mfd);
  }
});

test('the helper started from its sealed copy names itself shoal-init (the reaper leaves it alone)', async () => {
  const { Helper } = await import('../../shim/src/runtime/helper');
  const h = Helper.spawn({ passFds: 0, cwd: '/', stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    // Until its exec completes it is still "node"; then "shoal-init", then "shoal:[parent]" (never
    // the "<fd>" the kernel would name an exec of /proc/self/fd/<fd>).
    const named = /^(shoal-init|shoal:\[parent\])$/;
    let comm = '';
    for (let i = 0; i < 200 && !named.test(comm); i++) {
      comm = fs.readFileSync(`/proc/${h.pid}/comm`, 'utf8').trim();
      if (!named.test(comm)) await sleep(5);
    }
    assert.match(comm, named);
    assert.match(fs.readlinkSync(`/proc/${h.pid}/exe`), /^\/memfd:shoal-init/, 'runs from the sealed copy');
  } finally {
    h.abort();
    assert.ok((await h.exited) >= 0, 'reaped through its pidfd');
  }
});

test('spawnHelperStart/Join: starts on the spawner thread; the helper keeps its parent-death signal armed and lives on', async () => {
  // shoal-init sets PR_SET_PDEATHSIG, which fires when the thread that made it ends: a thread per
  // start would kill the helpers a moment later. They must live until their sync channel closes.
  const n = native();
  const exe = helperPath();
  const started: { pid: number; pidfd: number; sync: number }[] = [];
  try {
    const ids = Array.from({ length: 6 }, (_, i) => n.spawnHelperStart(exe, ['3'], [-1, -1, -1], '/', undefined, i === 0 ? exe : undefined));
    for (const id of ids) {
      const r = n.spawnHelperJoin(id);
      started.push(r);
      if (r.exeFd >= 0) {
        assert.ok(fs.readlinkSync(`/proc/self/fd/${r.exeFd}`).startsWith('/memfd:shoal-init'), 'the first start made the sealed copy');
        n.closeFd(r.exeFd);
      }
    }
    assert.throws(() => n.spawnHelperJoin(ids[0]), /no such helper start/);
    await sleep(300);
    for (const r of started) {
      assert.is(n.pidfdWaitExit(r.pidfd), null, `helper ${r.pid} is alive`);
      const st = fs.readFileSync(`/proc/${r.pid}/status`, 'utf8');
      assert.match(st, /^PPid:\s+(\d+)$/m);
      assert.is(Number(/^PPid:\s+(\d+)$/m.exec(st)![1]), process.pid, 'its parent is this process');
    }
    // EOF on its sync channel: each helper ends by itself.
    for (const r of started) n.closeFd(r.sync);
    for (const r of started) {
      for (let i = 0; i < 100 && n.pidfdWaitExit(r.pidfd) === null; i++) await sleep(20);
    }
  } finally {
    for (const r of started) {
      try {
        n.pidfdSendSignal(r.pidfd, 9);
      } catch {
        /* gone */
      }
    }
  }
});

test('spawnHelperStart reports a missing binary at the join, as spawnHelper does', () => {
  const n = native();
  const id = n.spawnHelperStart('/nonexistent/shoal-init', [], [0, 1, 2], '/');
  assert.throws(() => n.spawnHelperJoin(id), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('spawnHelperChannel: what is written before the join reaches the started process; a failed start still shows at the join', async () => {
  const n = native();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-channel-'));
  const out = path.join(dir, 'got');
  try {
    // The channel's child end is the process's fd 3 (after the three stdio fds).
    const id = n.spawnHelperStart('/bin/sh', ['-c', `head -c 11 <&3 > ${out}`], [-1, -1, -1], '/');
    const ch = n.spawnHelperChannel(id);
    assert.ok(ch > 2);
    fs.writeSync(ch, 'plan before');
    const r = n.spawnHelperJoin(id);
    assert.is(r.sync, ch, 'the join hands over the same channel');
    assert.throws(() => n.spawnHelperChannel(id), /no such helper start/);
    for (let i = 0; i < 250 && n.pidfdWaitExit(r.pidfd) === null; i++) await sleep(20);
    assert.is(fs.readFileSync(out, 'utf8'), 'plan before');
    n.closeFd(r.sync);
    n.closeFd(r.pidfd);
    const before = fs.readdirSync('/proc/self/fd').length;
    const bad = n.spawnHelperStart('/nonexistent/shoal-init', [], [0, 1, 2], '/');
    try {
      fs.writeSync(n.spawnHelperChannel(bad), 'x');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'EPIPE'); // the start failed already
    }
    assert.throws(() => n.spawnHelperJoin(bad), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    assert.is(fs.readdirSync('/proc/self/fd').length, before, 'the failed start closed its channel');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spawnHelper reports a missing binary as ENOENT and leaks no fd', () => {
  const n = native();
  const before = fs.readdirSync('/proc/self/fd').length;
  try {
    n.spawnHelper('/nonexistent/shoal-init', [], [0, 1, 2], '/');
    assert.unreachable('spawned');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOENT');
  }
  assert.is(fs.readdirSync('/proc/self/fd').length, before);
});

test('exitNow ends the process with its code at once: no exit listeners, written output kept', () => {
  const mod = path.join(__dirname, '../../shim/src/native.js');
  const script = `const { native } = require(${JSON.stringify(mod)}); const n = native();
process.on('exit', () => require('fs').writeSync(1, 'exit listener ran'));
require('fs').writeSync(1, 'before'); n.exitNow(5); require('fs').writeSync(1, 'after');`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.is(r.status, 5, r.stderr);
  assert.is(r.stdout, 'before');
});

/**
 * Run a command as this process's child with this process a subreaper, and return the pids of
 * the exit-hold processes it left (adopted here), with the command's result.
 */
function runAdoptingExitHolds(argv: string[], env: NodeJS.ProcessEnv = process.env): { r: ReturnType<typeof spawnSync>; holds: number[] } {
  const n = native();
  n.setChildSubreaper(true);
  try {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 10000, env });
    const holds = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
      try {
        const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        return st.includes('(exit-hold)') && Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
      } catch {
        return false;
      }
    });
    return { r, holds };
  } finally {
    n.setChildSubreaper(false);
  }
}

test('exitNow leaves freeing the memory to an exit-hold process: the exit is reported first, stdout closes, nothing names the command', async () => {
  const mod = path.join(__dirname, '../../shim/src/native.js');
  const marker = `exit-marker-${process.pid}`;
  const script = `const { native } = require(${JSON.stringify(mod)}); require('fs').writeSync(1, 'out'); native().exitNow(5);`;
  const { r, holds } = runAdoptingExitHolds([process.execPath, '-e', script, marker]);
  assert.is(r.status, 5, String(r.stderr));
  assert.is(r.stdout, 'out');
  assert.is(holds.length, 1, 'one exit-hold process, adopted by this subreaper');
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${holds[0]}/cmdline`, 'latin1');
  } catch {}
  assert.not.ok(cmdline.includes(marker), 'its command line is not the command\'s');
  assert.equal(await reapChild(holds[0]), { status: 0, signal: null }, 'it ends by itself');
});

test('exitNow(code, false) and the CLI with SHOAL_EXIT_HOLD=0 leave no exit-hold process; the CLI leaves one by default', async () => {
  const mod = path.join(__dirname, '../../shim/src/native.js');
  const plain = runAdoptingExitHolds([process.execPath, '-e', `require(${JSON.stringify(mod)}).native().exitNow(3, false);`]);
  assert.is(plain.r.status, 3, String(plain.r.stderr));
  assert.equal(plain.holds, []);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-native-'));
  try {
    // `create` is a hot command, and one with an invalid config.json has loaded the addon (its
    // helper starts before the validation): it ends through exitNow, with the config's error.
    const bundle = path.join(root, 'bundle');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.2.0', root: { path: 'rootfs' }, process: { args: [], cwd: '/' } }));
    const cli = [process.execPath, path.join(__dirname, '../../shoal.js'), '--root', path.join(root, 'state'), 'create', '-b', bundle, `hold-${process.pid}`];
    const off = runAdoptingExitHolds(cli, { ...process.env, SHOAL_EXIT_HOLD: '0' });
    assert.is(off.r.status, 1, String(off.r.stderr));
    assert.match(String(off.r.stderr), /process\.args/);
    assert.equal(off.holds, [], 'SHOAL_EXIT_HOLD=0');
    const on = runAdoptingExitHolds(cli);
    assert.is(on.r.status, 1, String(on.r.stderr));
    assert.is(on.holds.length, 1, 'by default');
    assert.equal(await reapChild(on.holds[0]), { status: 0, signal: null });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('mountAsync/umount2Async: a tmpfs off the main thread, errors as system errors', async () => {
  const n = native();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-native-'));
  const mounted = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir} `);
  try {
    const p = n.mountAsync('tmpfs', dir, 'tmpfs', 0, 'size=1m');
    assert.instance(p, Promise);
    await p;
    assert.ok(mounted(), 'mounted');
    await n.umount2Async(dir, 0);
    assert.not.ok(mounted(), 'unmounted');
    try {
      await n.mountAsync('tmpfs', path.join(dir, 'missing'), 'tmpfs', 0);
      assert.unreachable('mounted on a missing dir');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOENT');
      assert.is((e as NodeJS.ErrnoException).syscall, 'mount');
    }
    try {
      await n.umount2Async(dir, 0);
      assert.unreachable('unmounted a plain dir');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'EINVAL');
    }
  } finally {
    if (mounted()) n.umount2(dir, 2);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('helperPath/probePath either resolve or list every path tried', () => {
  for (const find of [helperPath, probePath]) {
    try {
      assert.ok(path.isAbsolute(find()));
    } catch (e) {
      assert.instance(e, NativeNotFoundError);
      const err = e as NativeNotFoundError;
      assert.is(err.tried.length, 2);
      for (const p of err.tried) assert.ok(err.message.includes(p));
    }
  }
});

test.run();
