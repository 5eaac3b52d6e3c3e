/*
 * What a container sees of the host: no inherited fd (unless --preserve-fds or LISTEN_FDS says
 * so), its own hostname, pid 1, its own mount table, stdio passed through unchanged (a pipe stays
 * that pipe), and with --console-socket a pty as stdio and /dev/console.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, forceDelete, removeRoot, Defer } from '../lib/shoal';
import { makeBundle, BundleOverrides } from '../lib/rootfs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(defer: Defer, script: string, overrides: BundleOverrides = {}) {
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-iso-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const bundle = makeBundle({ ...overrides, process: { args: ['sh', '-c', script], ...overrides.process } }, { dir: path.join(work, 'bundle') });
  const id = uniqueId('is');
  defer(() => forceDelete(id, root));
  return { root, work, bundle, id };
}

/** `shoal --root R run -b B ID` in the foreground with extra stdio entries (fds 3, 4 ...). */
function runWith(e: { root: string; bundle: string; id: string }, extra: number[], flags: string[] = []) {
  const r = spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', ...flags, '-b', e.bundle, e.id], {
    stdio: ['ignore', 'pipe', 'pipe', ...extra],
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const fdList = (out: string) => out.trim().split('\n').filter((l) => /^\d+$/.test(l)).map(Number);

test('no host fd reaches the container: only 0, 1, 2 (and the fd ls opens)', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, 'ls /proc/self/fd');
    const a = fs.openSync(path.join(e.work, 'a'), 'w'), b = fs.openSync(path.join(e.work, 'b'), 'w');
    defer(() => { fs.closeSync(a); fs.closeSync(b); });
    const r = runWith(e, [a, b, a]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(fdList(r.stdout), [0, 1, 2, 3], `fds in the container: ${r.stdout}`);
  });
});

test('--preserve-fds 2: fds 3 and 4 are the caller\'s, readable and writable; fd 5 is not passed', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, 'read line <&3; echo "got $line"; echo from-container >&4; ls /proc/self/fd');
    fs.writeFileSync(path.join(e.work, 'in'), 'from-host\n');
    const i = fs.openSync(path.join(e.work, 'in'), 'r'), o = fs.openSync(path.join(e.work, 'out'), 'w'), x = fs.openSync(path.join(e.work, 'x'), 'w');
    defer(() => [i, o, x].forEach((fd) => fs.closeSync(fd)));
    const r = runWith(e, [i, o, x], ['--preserve-fds', '2']);
    assert.is(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('got from-host\n'), r.stdout);
    assert.is(fs.readFileSync(path.join(e.work, 'out'), 'utf8'), 'from-container\n');
    assert.equal(fdList(r.stdout), [0, 1, 2, 3, 4, 5], `fds in the container: ${r.stdout}`);
  });
});

test('LISTEN_FDS=1 with LISTEN_PID = shoal\'s pid passes fd 3 and sets LISTEN_FDS=1 LISTEN_PID=1', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, 'echo "fds=$LISTEN_FDS pid=$LISTEN_PID"; echo via-listen-fd >&3; ls /proc/self/fd');
    const f = fs.openSync(path.join(e.work, 'listen'), 'w');
    defer(() => fs.closeSync(f));
    // LISTEN_PID must be shoal's own pid: let a shell export its $$ and exec node in place.
    const cmd = `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`;
    const r = spawnSync('/bin/sh', ['-c', cmd, process.execPath, shoalBin(), '--root', e.root, 'run', '-b', e.bundle, e.id], {
      stdio: ['ignore', 'pipe', 'pipe', f],
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.is(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith('fds=1 pid=1\n'), r.stdout);
    assert.is(fs.readFileSync(path.join(e.work, 'listen'), 'utf8'), 'via-listen-fd\n');
    assert.equal(fdList(r.stdout), [0, 1, 2, 3, 4]);
    // With LISTEN_PID of another process the fds are not passed (and LISTEN_* not set).
    const r2 = spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', '-b', e.bundle, uniqueId('is')], {
      stdio: ['ignore', 'pipe', 'pipe', f], encoding: 'utf8', timeout: 30_000, env: { ...process.env, LISTEN_FDS: '1', LISTEN_PID: '1' },
    });
    assert.ok(r2.stdout.startsWith('fds= pid=\n'), r2.stdout);
    assert.equal(fdList(r2.stdout), [0, 1, 2, 3]);
  });
});

test('own hostname, pid 1, own namespaces and mount table; the host does not see its mounts', async () => {
  await withCleanup(async (defer) => {
    const script = 'hostname; echo $$; for n in mnt pid uts ipc net; do readlink /proc/self/ns/$n; done; cat /proc/self/mountinfo > /out/mountinfo; touch /out/ready; while :; do sleep 1; done';
    const e = env(defer, script, { hostname: 'iso-host-name' });
    const out = path.join(e.work, 'out');
    fs.mkdirSync(out);
    const cfg = JSON.parse(fs.readFileSync(path.join(e.bundle, 'config.json'), 'utf8'));
    cfg.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind'] }, { destination: '/scratch', type: 'tmpfs', source: 'isotmpfs', options: ['size=1m'] });
    fs.writeFileSync(path.join(e.bundle, 'config.json'), JSON.stringify(cfg));
    const so = fs.openSync(path.join(e.work, 'stdout'), 'w');
    defer(() => fs.closeSync(so));
    assert.is(spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', '-d', '-b', e.bundle, e.id], { stdio: ['ignore', so, so] }).status, 0);
    for (let i = 0; i < 500 && !fs.existsSync(path.join(out, 'ready')); i++) await sleep(20);
    const lines = fs.readFileSync(path.join(e.work, 'stdout'), 'utf8').trim().split('\n');
    assert.is(lines[0], 'iso-host-name', 'the container sees its config hostname');
    assert.is(lines[1], '1', 'the process is pid 1 of its namespace');
    const ns = ['mnt', 'pid', 'uts', 'ipc', 'net'].map((n) => fs.readlinkSync(`/proc/self/ns/${n}`));
    lines.slice(2, 7).forEach((l, i) => assert.is.not(l, ns[i], `same ${l} namespace as the host`));
    assert.is(os.hostname() === 'iso-host-name', false, 'the host name must not change');
    const inner = fs.readFileSync(path.join(out, 'mountinfo'), 'utf8');
    const host = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    assert.is.not(inner, host);
    assert.match(inner, / \/scratch \S+ [^-]*- tmpfs isotmpfs /, 'the container sees its tmpfs');
    assert.match(inner, / \/proc \S+ [^-]*- proc /);
    assert.not.ok(host.includes('isotmpfs') || host.includes(e.bundle), 'a container mount is visible on the host');
  });
});

test('stdio passes through unchanged: a pipe stays the same pipe, a socket the same socket', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, 'readlink /proc/self/fd/0; readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2');
    fs.writeFileSync(path.join(e.work, 'stdin'), '');
    // The caller's stdout is a pipe into cat; print its inode before running shoal on the same pipe.
    const sh = `{ readlink /proc/self/fd/1; "$0" "$@" < ${e.work}/stdin; } | cat`;
    const r = spawnSync('/bin/sh', ['-c', sh, process.execPath, shoalBin(), '--root', e.root, 'run', '-b', e.bundle, e.id], { encoding: 'utf8', timeout: 30_000 });
    const [hostPipe, inStdin, inStdout] = r.stdout.trim().split('\n');
    assert.match(hostPipe, /^pipe:\[\d+\]$/);
    assert.is(inStdout, hostPipe, 'stdout in the container is the caller\'s pipe');
    assert.ok(inStdin.endsWith('stdin'), `stdin is the caller's file: ${inStdin}`);
    // Node gives spawnSync children a socketpair: stderr must be that very socket.
    const sock = runWith({ ...e, id: uniqueId('is') }, []);
    assert.match(sock.stderr.trim(), /^socket:\[\d+\]$/, sock.stderr);
  });
});

/** The static probe (its --recv-console mode is the console-socket receiver), built if missing. */
function probeBin(work: string): string {
  const built = path.join(__dirname, '..', '..', 'Release', 'shoal-probe');
  if (fs.existsSync(built)) return built;
  const out = path.join(work, 'shoal-probe');
  execFileSync('gcc', ['-std=gnu11', '-O2', '-static', '-o', out, path.join(__dirname, '../../../native/probe/probe.c')]);
  return out;
}

test('--console-socket: the pty master arrives on the socket, stdio is a tty, /dev/console exists', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, 'test -t 0 && echo stdin-is-tty; test -t 1 && echo stdout-is-tty; test -c /dev/console && echo console-exists; tty', { process: { terminal: true } });
    const sock = path.join(e.work, 'console.sock');
    const recv = spawn(probeBin(e.work), ['--recv-console', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => recv.kill('SIGKILL'));
    let out = '', err = '';
    recv.stdout.on('data', (d) => (out += d));
    recv.stderr.on('data', (d) => (err += d));
    const done = new Promise((r) => recv.on('exit', r));
    for (let i = 0; i < 250 && !err.includes('console-listening'); i++) await sleep(20);
    const r = spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', '-d', '--console-socket', sock, '-b', e.bundle, e.id], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    assert.match(err, /console-name: \/dev\/pts\/\d+/);
    assert.match(err, /console-isatty: 1/);
    assert.match(out, /stdin-is-tty/);
    assert.match(out, /stdout-is-tty/);
    assert.match(out, /console-exists/);
    assert.match(out, /\/dev\/pts\/\d+/);
    assert.is(runShoal(['delete', e.id], { root: e.root }).code, 0);
  });
});

test.run();
