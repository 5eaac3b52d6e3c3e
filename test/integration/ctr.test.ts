/*
 * containerd 1.6's `ctr` driving shoal through containerd-shim-runc-v2 with
 * `--runc-binary build/shoal.js` (the shim calls shoal exactly as it calls runc; see
 * PROTOCOLS.md section 1). containerd runs in a private mount namespace (test/lib/daemons.ts) and
 * the image is a hand-built OCI layout imported with `ctr images import` (test/lib/image.ts).
 * Every test runs first with runc (the reference) and then with shoal, and ends by checking that
 * no cgroup, mount or process of the sandbox was left. containerd starts once for the file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  cannotRun,
  CmdResult,
  Containerd,
  runcExecutable,
  runInPty,
  shoalExecutable,
  skip,
  startContainerd,
} from '../lib/daemons';
import { ociImageTar } from '../lib/image';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runtimes under test, by name, with the binary given to `--runc-binary`. */
const RUNTIMES: Array<[string, () => string]> = [
  ['runc', () => runcExecutable()!],
  ['shoal', shoalExecutable],
];

let cd: Containerd | undefined;
let image = '';
/** Why containerd cannot run on this machine (tests skip), if so. */
let unavailable: string | undefined;
/** Why it failed to start although it should run here (tests fail). */
let startError: Error | undefined;

test.before(async () => {
  unavailable = cannotRun(['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'script']);
  if (unavailable) return;
  try {
    cd = await startContainerd();
    const oci = ociImageTar();
    const r = cd.ctr(['images', 'import', oci.tar]);
    if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr}`);
    image = oci.name;
  } catch (e) {
    startError = e as Error;
  }
});

test.after(async () => {
  await cd?.stop().catch(() => undefined);
});

function ok(r: CmdResult, what: string): string {
  assert.is(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `ctr t ls` as id -> {pid, status}. */
function tasks(c: Containerd): Map<string, { pid: number; status: string }> {
  const out = new Map<string, { pid: number; status: string }>();
  for (const line of ok(c.ctr(['tasks', 'ls']), 'tasks ls').split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id) out.set(id, { pid: Number(pid), status });
  }
  return out;
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let idCounter = 0;

/**
 * Registers `name` as a test of each runtime: the body gets containerd, the `--runc-binary`
 * arguments and an id generator; every id it made is force-deleted afterwards (task, then
 * container), then the sandbox must have no new cgroup, mount or process.
 */
function ctrTest(name: string, body: (c: Containerd, rt: string[], newId: () => string) => Promise<void> | void): void {
  for (const [rtName, bin] of RUNTIMES) {
    test(`ctr ${rtName}: ${name}`, async () => {
      if (unavailable) return void skip(unavailable);
      if (startError) throw startError;
      const c = cd!;
      const before = c.snapshot();
      const ids: string[] = [];
      const newId = () => {
        const id = `${rtName}-${process.pid}-${++idCounter}`;
        ids.push(id);
        return id;
      };
      let failure: unknown;
      try {
        await body(c, ['--runc-binary', bin()], newId);
      } catch (e) {
        failure = e;
      }
      for (const id of ids) {
        c.ctr(['tasks', 'delete', '--force', id], { timeoutMs: 60_000 });
        c.ctr(['containers', 'delete', id], { timeoutMs: 60_000 });
      }
      if (failure) throw failure;
      const leaks = await c.sandbox.leaksSince(before);
      assert.equal(leaks, [], `leaked after the test:\n${leaks.join('\n')}`);
    });
  }
}

ctrTest('run --rm: /bin/true exits 0, sh -c "echo hi; exit 7" prints hi and exits 7', (c, rt, newId) => {
  const t = c.ctr(['run', '--rm', '--fifo-dir', c.fifoDir, ...rt, image, newId(), '/bin/true']);
  assert.is(t.code, 0, `/bin/true: ${t.stderr}`);
  const r = c.ctr(['run', '--rm', '--fifo-dir', c.fifoDir, ...rt, image, newId(), 'sh', '-c', 'echo hi; exit 7']);
  assert.is(r.stdout, 'hi\n', r.stderr);
  assert.is(r.code, 7, r.stderr);
  assert.is(c.ctr(['containers', 'ls', '-q']).stdout.trim(), '', '--rm removed the containers');
});

ctrTest('run --rm --tty gives the process a terminal', (c, rt, newId) => {
  const r = runInPty([...c.sandbox.nsenterArgs(), 'ctr', '-a', c.sock, '-n', c.namespace, 'run', '--rm', '--tty', '--fifo-dir', c.fifoDir, ...rt, image, newId(), 'sh', '-c', 'tty; exit 5']);
  assert.match(r.stdout, /\/dev\/pts\/\d+/, `run --tty: ${r.stdout} ${r.stderr}`);
  assert.is(r.code, 5, r.stdout);
});

ctrTest('run -d, tasks ps, pause/resume, kill, delete, containers rm', async (c, rt, newId) => {
  const id = newId();
  ok(c.ctr(['run', '-d', '--null-io', '--fifo-dir', c.fifoDir, ...rt, image, id, 'sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait']), 'run -d');
  const t = tasks(c).get(id);
  assert.ok(t, 'task listed');
  assert.is(t!.status, 'RUNNING');
  assert.ok(fs.existsSync(`/proc/${t!.pid}`), 'init pid alive');
  const cgroup = (ctrl: string) => path.join('/sys/fs/cgroup', ctrl, c.namespace, id);
  assert.ok(fs.readFileSync(path.join(cgroup('memory'), 'cgroup.procs'), 'utf8').split('\n').includes(String(t!.pid)), 'init in /<ns>/<id>');

  const ps = ok(c.ctr(['tasks', 'ps', id]), 'tasks ps');
  assert.match(ps, /^PID\s+INFO/);
  const pids = ps.split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
  assert.ok(pids.includes(t!.pid), `ps lists init ${t!.pid}: ${ps}`);
  assert.ok(pids.length >= 2, `ps lists sh and sleep: ${ps}`);

  ok(c.ctr(['tasks', 'pause', id]), 'pause');
  assert.is(tasks(c).get(id)!.status, 'PAUSED');
  assert.is(fs.readFileSync(path.join(cgroup('freezer'), 'freezer.state'), 'utf8').trim(), 'FROZEN');
  ok(c.ctr(['tasks', 'resume', id]), 'resume');
  assert.is(tasks(c).get(id)!.status, 'RUNNING');
  assert.is(fs.readFileSync(path.join(cgroup('freezer'), 'freezer.state'), 'utf8').trim(), 'THAWED');

  ok(c.ctr(['tasks', 'kill', id]), 'kill (SIGTERM)');
  await waitFor('task stopped after SIGTERM', () => tasks(c).get(id)?.status === 'STOPPED');
  const d = c.ctr(['tasks', 'delete', id]);
  assert.is(d.code, 0, `tasks delete: ${d.stderr}`);
  assert.not.ok(tasks(c).has(id), 'task gone after delete');
  ok(c.ctr(['containers', 'delete', id]), 'containers delete');
  assert.not.ok(fs.existsSync(cgroup('memory')), 'cgroup removed');
});

ctrTest('tasks exec: output and exit code, --tty, after pause/resume', (c, rt, newId) => {
  const id = newId();
  ok(c.ctr(['run', '-d', '--null-io', '--fifo-dir', c.fifoDir, ...rt, image, id, 'sleep', '1000']), 'run -d');
  const e = c.ctr(['tasks', 'exec', '--fifo-dir', c.fifoDir, '--exec-id', 'x1', id, 'sh', '-c', 'echo from-exec; exit 4']);
  assert.is(e.stdout, 'from-exec\n', e.stderr);
  assert.is(e.code, 4, e.stderr);
  const tty = runInPty([...c.sandbox.nsenterArgs(), 'ctr', '-a', c.sock, '-n', c.namespace, 'tasks', 'exec', '--fifo-dir', c.fifoDir, '--tty', '--exec-id', 'x2', id, 'sh', '-c', 'tty; exit 6']);
  assert.match(tty.stdout, /\/dev\/pts\/\d+/, `exec --tty: ${tty.stdout} ${tty.stderr}`);
  assert.is(tty.code, 6, `exec --tty exit code: ${tty.stdout}`);

  ok(c.ctr(['tasks', 'pause', id]), 'pause');
  ok(c.ctr(['tasks', 'resume', id]), 'resume');
  const e2 = c.ctr(['tasks', 'exec', '--fifo-dir', c.fifoDir, '--exec-id', 'x3', id, 'echo', 'after-resume']);
  assert.is(e2.stdout, 'after-resume\n', e2.stderr);
  ok(c.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]), 'kill');
});

ctrTest('kill -s SIGKILL of a TERM-ignoring task, exit status 137, delete', async (c, rt, newId) => {
  const id = newId();
  ok(c.ctr(['run', '-d', '--null-io', '--fifo-dir', c.fifoDir, ...rt, image, id, 'sh', '-c', 'trap "" TERM; sleep 1000']), 'run -d');
  await sleep(300);
  ok(c.ctr(['tasks', 'kill', id]), 'kill (SIGTERM, ignored)');
  await sleep(500);
  assert.is(tasks(c).get(id)?.status, 'RUNNING', 'SIGTERM is ignored');
  ok(c.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]), 'kill SIGKILL');
  await waitFor('task stopped after SIGKILL', () => tasks(c).get(id)?.status === 'STOPPED');
  const d = c.ctr(['tasks', 'delete', id]);
  assert.is(d.code, 0, `tasks delete: ${d.stderr}`);
  assert.match(d.stdout + d.stderr, /137/, `delete reports exit status 137: ${d.stdout} ${d.stderr}`);
  ok(c.ctr(['containers', 'delete', id]), 'containers delete');
});

ctrTest('tasks delete --force of a running task', (c, rt, newId) => {
  const id = newId();
  ok(c.ctr(['run', '-d', '--null-io', '--fifo-dir', c.fifoDir, ...rt, image, id, 'sleep', '1000']), 'run -d');
  ok(c.ctr(['tasks', 'delete', '--force', id]), 'tasks delete --force');
  assert.not.ok(tasks(c).has(id), 'task gone');
  ok(c.ctr(['containers', 'delete', id]), 'containers delete');
});

ctrTest('run --memory-limit --cpus --cgroup --env --cwd, tasks metrics', async (c, rt, newId) => {
  const id = newId();
  const cg = `/${c.namespace}/custom-${id}`;
  ok(
    c.ctr(['run', '-d', '--null-io', '--fifo-dir', c.fifoDir, ...rt, '--memory-limit', String(48 * 1024 * 1024), '--cpus', '0.25',
      '--cgroup', cg, '--env', 'FOO=bar', '--cwd', '/tmp', image, id, 'sleep', '1000']),
    'run -d with limits',
  );
  const read = (ctrl: string, file: string) => fs.readFileSync(path.join('/sys/fs/cgroup', ctrl, cg, file), 'utf8').trim();
  assert.is(read('memory', 'memory.limit_in_bytes'), String(48 * 1024 * 1024));
  assert.is(Number(read('cpu', 'cpu.cfs_quota_us')) / Number(read('cpu', 'cpu.cfs_period_us')), 0.25);
  const pid = tasks(c).get(id)!.pid;
  assert.ok(read('memory', 'cgroup.procs').split('\n').includes(String(pid)), `init ${pid} in ${cg}`);
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  assert.ok(env.includes('FOO=bar'), `environ: ${env.join(' ')}`);
  assert.is(fs.readlinkSync(`/proc/${pid}/cwd`), '/tmp', 'cwd (as seen inside its root)');
  const m = c.ctr(['tasks', 'metrics', '--format', 'json', id]);
  assert.is(m.code, 0, `metrics: ${m.stderr}`);
  const metrics = JSON.parse(m.stdout);
  assert.ok(JSON.stringify(metrics).includes(String(48 * 1024 * 1024)), `metrics show the memory limit: ${m.stdout.slice(0, 400)}`);
  ok(c.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]), 'kill');
  await waitFor('stopped', () => tasks(c).get(id)?.status === 'STOPPED');
});

test('ctr: containerd stops cleanly, leaving nothing', async () => {
  if (unavailable) return void skip(unavailable);
  if (startError) throw startError;
  const c = cd!;
  cd = undefined;
  await c.stop();
});

test.run();
