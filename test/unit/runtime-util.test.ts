/* Small runtime utilities on the CLI's start-up path: timestamps, fd writes. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as fs from 'fs';
import { isoTime } from '../../shim/src/runtime/time';
import { StateStore, type ContainerState } from '../../shim/src/runtime/state';
import { errnoError, Errno } from '../../shim/src/runtime/errno';
import { SIGNALS, parseSignal } from '../../shim/src/runtime/kill';
import { hasMountSetattr } from '../../shim/src/runtime/plan/build';

test('isoTime formats like Date.prototype.toISOString', () => {
  for (const ms of [0, 1, 999, 1_700_000_000_123, 253402300799999, Date.now()]) {
    const d = new Date(ms);
    assert.is(isoTime(d), d.toISOString(), String(ms));
  }
  assert.match(isoTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

const FDWRITE = path.join(__dirname, '../../shim/src/runtime/fdwrite.js');

test('writeFd writes everything, in order, through a pipe much larger than its buffer', () => {
  const script = `const { stdout, stderr } = require(${JSON.stringify(FDWRITE)}); stderr('e1\\n'); for (let i = 0; i < 2000; i++) stdout('line ' + i + ' ' + 'x'.repeat(500) + '\\n'); stderr('e2\\n');`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.is(lines.length, 2001);
  assert.ok(lines.every((l, i) => i === 2000 || l.startsWith(`line ${i} `)), 'all lines, in order');
  assert.is(r.stderr, 'e1\ne2\n');
});

test('writeFd into a pipe whose reader is gone returns quietly (EPIPE), like a CLI piped into head', () => {
  const script = `process.on('SIGPIPE', () => {}); const { stdout } = require(${JSON.stringify(FDWRITE)}); for (let i = 0; i < 5000; i++) stdout('y'.repeat(1000) + '\\n'); require('fs').writeSync(2, 'done\\n');`;
  const r = spawnSync('sh', ['-c', `"${process.execPath}" -e '${script.replace(/'/g, `'\\''`)}' | head -c 10 >/dev/null`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /done/);
});

test('forwardSignals: a signal goes to the container process; once stopped, it acts on this process as without a handler', () => {
  const mod = path.join(__dirname, '../../shim/src/cli/forward.js');
  const script = (stop: boolean) => `const { forwardSignals } = require(${JSON.stringify(mod)});
const { spawn } = require('child_process');
const target = spawn('sleep', ['30'], { stdio: 'ignore' });
target.on('exit', (code, sig) => { process.stdout.write('target ' + sig + '\\n'); process.exit(0); });
const f = forwardSignals(target.pid);
${stop ? 'f.stop();' : ''}
process.stdout.write('pid ' + target.pid + '\\n');
process.kill(process.pid, 'SIGTERM');
setTimeout(() => { process.stdout.write('survived\\n'); target.kill('SIGKILL'); }, 2000);`;
  const on = spawnSync(process.execPath, ['-e', script(false)], { encoding: 'utf8', timeout: 10_000 });
  assert.is(on.status, 0, on.stderr);
  assert.match(on.stdout, /^target SIGTERM$/m, 'forwarded');
  const off = spawnSync(process.execPath, ['-e', script(true)], { encoding: 'utf8', timeout: 10_000 });
  const pid = Number(/^pid (\d+)$/m.exec(off.stdout)?.[1]);
  try {
    assert.is(off.signal, 'SIGTERM', 'this process ends by the signal');
    assert.not.match(off.stdout, /survived|target/);
    assert.ok(pid > 0 && fs.existsSync(`/proc/${pid}`), 'the container process was not signalled');
  } finally {
    if (pid > 0) process.kill(pid, 'SIGKILL');
  }
});

test('StateStore.save: a fresh directory gets its state by a rename, a later save swaps it in; no temp file stays', () => {
  const root = fs.mkdtempSync('/tmp/shoal-store-');
  try {
    const store = new StateStore(root);
    const st = (n: number) => ({ id: 'c1', pid: n } as unknown as ContainerState);
    const file = path.join(root, 'c1', 'state.json');
    store.reserve('c1');
    store.save(st(1));
    const first = fs.statSync(file).ino;
    store.save(st(2));
    assert.is(store.load('c1').pid, 2);
    assert.is.not(fs.statSync(file).ino, first, 'a new file, not the old one rewritten');
    assert.equal(fs.readdirSync(path.join(root, 'c1')), ['state.json'], 'the old state is gone');
    // Another process's store (nothing fresh): swaps too; and renames when state.json is missing.
    const other = new StateStore(root);
    other.save(st(3));
    assert.is(store.load('c1').pid, 3);
    fs.unlinkSync(file);
    other.save(st(4));
    assert.is(store.load('c1').pid, 4);
    assert.equal(fs.readdirSync(path.join(root, 'c1')), ['state.json']);
    other.remove('c1');
    assert.not.ok(fs.existsSync(path.join(root, 'c1')));
    // A directory with more than state.json in it (an unstarted container's exec.fifo) goes too.
    store.reserve('c2');
    store.save({ id: 'c2' } as unknown as ContainerState);
    fs.writeFileSync(store.fifo('c2'), '');
    store.remove('c2');
    assert.not.ok(fs.existsSync(path.join(root, 'c2')));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('errnoError words an errno as Node\'s fs does (message, code, errno, syscall, path)', () => {
  const os = require('os') as typeof import('os');
  for (const [name, value] of Object.entries(Errno)) assert.is(value, os.constants.errno[name as keyof typeof os.constants.errno], name);
  let fsErr: NodeJS.ErrnoException | undefined;
  try {
    require('fs').openSync('/nonexistent/x', 'r');
  } catch (e) {
    fsErr = e as NodeJS.ErrnoException;
  }
  const ours = errnoError(Errno.ENOENT, 'open', '/nonexistent/x');
  assert.is(ours.message, fsErr!.message);
  assert.is(ours.code, fsErr!.code);
  assert.is(ours.errno, fsErr!.errno);
  assert.is(ours.syscall, 'open');
  assert.is(ours.path, '/nonexistent/x');
  assert.is(errnoError(Errno.EPIPE, 'write').message, 'EPIPE: broken pipe, write');
});

test('the tables that stand in for the os module match it: signal numbers, the kernel release', () => {
  const os = require('os') as typeof import('os');
  const signals = os.constants.signals as Record<string, number>;
  for (const [name, n] of Object.entries(SIGNALS)) assert.is(n, signals[name], name);
  for (const [name, n] of Object.entries(signals)) if (name in SIGNALS) assert.is(parseSignal(name.slice(3).toLowerCase()), n);
  assert.is(parseSignal(''), 15);
  assert.is(parseSignal('RTMIN+2'), 36);
  assert.is(hasMountSetattr(), hasMountSetattr(os.release()), 'the default reads /proc/sys/kernel/osrelease');
  assert.ok(hasMountSetattr('5.12.0') && !hasMountSetattr('5.11.9') && hasMountSetattr('6.1.0-18-amd64'));
});

test.run();
