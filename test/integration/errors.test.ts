/*
 * Every error case of the OCI lifecycle (runtime-spec runtime.md) and of the runc CLI contract:
 * a non-zero exit, a stderr naming the problem, and nothing changed: the state of existing
 * containers, the files under --root and the cgroups of this test process are the same after.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, removeRoot, Defer, RunResult } from '../lib/shoal';
import { makeBundle, BundleOverrides, BundleOptions } from '../lib/rootfs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `find ARGS` (cgroup dirs of other tests vanish during the walk: keep stdout, ignore the status). */
function findCgroups(args: string[]): string {
  return spawnSync('find', args, { encoding: 'utf8' }).stdout ?? '';
}

/** `create`/`run -d` leave the container holding our stdio: use files, never pipes. */
function shoalToFiles(args: string[], root: string, dir: string): { code: number; stderr: string } {
  const out = fs.openSync(path.join(dir, 'stdout'), 'a'), err = path.join(dir, 'stderr');
  fs.writeFileSync(err, '');
  const e = fs.openSync(err, 'a');
  try {
    const r = spawnSync(process.execPath, [shoalBin(), '--root', root, ...args], { stdio: ['ignore', out, e], timeout: 30_000 });
    return { code: r.status ?? -1, stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(e);
  }
}

/** Everything an error must not change: files (and state.json contents) under root, our cgroups. */
function snapshot(root: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      const p = path.join(d, e.name);
      files.push(e.name === 'state.json' ? `${p} ${fs.readFileSync(p, 'utf8')}` : p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  const cgroups = findCgroups(['/sys/fs/cgroup', '-name', `*-${process.pid}-*`]);
  const states = runShoal(['list', '--format', 'json'], { root }).stdout;
  return [...files.sort(), cgroups, states].join('\n');
}

/** Runs a failing command and checks: non-zero exit, stderr matching `msg`, nothing changed. */
function expectError(args: string[], root: string, msg: RegExp, opts: { files?: string } = {}): RunResult {
  const before = snapshot(root);
  let r: RunResult;
  if (opts.files) {
    const f = shoalToFiles(args, root, opts.files);
    r = { code: f.code, signal: null, stdout: '', stderr: f.stderr };
  } else {
    r = runShoal(args, { root, timeoutMs: 30_000 });
  }
  assert.ok(r.code > 0, `shoal ${args.join(' ')} should fail, got ${r.code}: ${r.stderr}`);
  assert.ok(r.stderr.trim().length > 0, `shoal ${args.join(' ')}: empty stderr`);
  assert.match(r.stderr, msg, `shoal ${args.join(' ')}: stderr ${JSON.stringify(r.stderr)} should match ${msg}`);
  assert.fixture(snapshot(root), before, `shoal ${args.join(' ')} changed the state`);
  return r;
}

function status(id: string, root: string): string {
  return JSON.parse(runShoal(['state', id], { root }).stdout).status;
}

async function until(id: string, root: string, want: string): Promise<void> {
  for (let i = 0; i < 500 && status(id, root) !== want; i++) await sleep(20);
  assert.is(status(id, root), want);
}

function env(defer: Defer, overrides: BundleOverrides = {}, opts: BundleOptions = {}) {
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-err-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const bundle = makeBundle(overrides, { ...opts, dir: path.join(work, 'bundle') });
  return { root, work, bundle, id: uniqueId('er') };
}

const LOOP = { args: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 0.1; done"] };

test('running container: start, delete without --force, create with its id all fail and change nothing', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = env(defer, { process: LOOP });
    assert.is(shoalToFiles(['run', '-d', '-b', bundle, id], root, work).code, 0);
    const pid = JSON.parse(runShoal(['state', id], { root }).stdout).pid;
    expectError(['start', id], root, /already|running|started/i);
    expectError(['delete', id], root, /running|not stopped/i);
    expectError(['create', '-b', bundle, id], root, /exist/i, { files: work });
    const s = JSON.parse(runShoal(['state', id], { root }).stdout);
    assert.is(s.status, 'running', 'the first container stays intact');
    assert.is(s.pid, pid);
    assert.ok(fs.existsSync(`/proc/${pid}`));
  });
});

test('created container: a duplicate create fails and the first stays created', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = env(defer, { process: LOOP });
    assert.is(shoalToFiles(['create', '-b', bundle, id], root, work).code, 0);
    expectError(['create', '-b', bundle, id], root, new RegExp(`exist.*${id}|${id}.*exist`, 'i'), { files: work });
    assert.is(status(id, root), 'created');
    assert.ok(fs.existsSync(path.join(root, id, 'exec.fifo')), 'the first container can still be started');
    assert.is(runShoal(['start', id], { root }).code, 0);
    assert.is(status(id, root), 'running');
  });
});

test('stopped container: kill and start fail ("container not running")', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = env(defer, { process: { args: ['true'] } });
    assert.is(shoalToFiles(['run', '-d', '-b', bundle, id], root, work).code, 0);
    await until(id, root, 'stopped');
    expectError(['kill', id, 'KILL'], root, /container not running/);
    expectError(['kill', id], root, /container not running/);
    expectError(['start', id], root, /stopped|not created|cannot start/i);
    assert.is(runShoal(['kill', '--all', id, 'KILL'], { root }).code, 0, 'kill --all of a stopped container succeeds');
  });
});

test('missing container: state, start, kill, delete say "container does not exist"; delete --force succeeds', async () => {
  await withCleanup(async (defer) => {
    const root = tmpRoot();
    defer(() => removeRoot(root));
    const id = uniqueId('er');
    for (const args of [['state', id], ['start', id], ['kill', id], ['kill', id, 'KILL'], ['delete', id]]) {
      expectError(args, root, /container does not exist/);
    }
    const r = runShoal(['delete', '--force', id], { root });
    assert.is(r.code, 0, r.stderr);
  });
});

test('bad command lines: unknown flag, unknown subcommand, invalid signal, missing id', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle, id } = env(defer, { process: LOOP });
    assert.is(shoalToFiles(['create', '-b', bundle, id], root, work).code, 0);
    expectError(['--no-such-global', 'list'], root, /no-such-global/);
    expectError(['state', '--no-such-flag', id], root, /no-such-flag/);
    expectError(['create', '--bogus-flag', '-b', bundle, uniqueId('er')], root, /bogus-flag/, { files: work });
    expectError(['frobnicate', id], root, /frobnicate/);
    expectError(['kill', id, 'SIGNOPE'], root, /SIGNOPE/);
    expectError(['kill', id, '1000'], root, /1000|signal/i);
    expectError(['start'], root, /id/);
    assert.is(status(id, root), 'created');
  });
});

test('bad bundles: missing bundle, invalid JSON, empty process.args, missing rootfs, missing executable', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle } = env(defer, { process: LOOP });
    const missing = path.join(work, 'no-such-bundle');
    expectError(['create', '-b', missing, uniqueId('er')], root, /no-such-bundle/, { files: work });

    const cfg = path.join(bundle, 'config.json');
    const good = fs.readFileSync(cfg, 'utf8');
    const write = (edit: (c: any) => void) => {
      const c = JSON.parse(good);
      edit(c);
      fs.writeFileSync(cfg, JSON.stringify(c));
    };
    fs.writeFileSync(cfg, good.slice(0, good.length / 2));
    expectError(['create', '-b', bundle, uniqueId('er')], root, /config\.json|JSON/i, { files: work });
    write((c) => (c.process.args = []));
    expectError(['create', '-b', bundle, uniqueId('er')], root, /process\.args/, { files: work });
    write((c) => (c.root.path = 'no-such-rootfs'));
    expectError(['create', '-b', bundle, uniqueId('er')], root, /no-such-rootfs/, { files: work });
    write((c) => (c.process.args = ['/bin/no-such-program', 'x']));
    expectError(['create', '-b', bundle, uniqueId('er')], root, /no-such-program/, { files: work });
    write((c) => (c.process.args = ['no-such-cmd']));
    expectError(['run', '-b', bundle, uniqueId('er')], root, /no-such-cmd/);
    // The helper's report is UTF-8: a path that is not ASCII comes through intact.
    write((c) => (c.process.args = ['/bin/no-such-caf\u00e9-\u6f22']));
    expectError(['create', '-b', bundle, uniqueId('er')], root, /\/bin\/no-such-caf\u00e9-\u6f22/, { files: work });
    assert.is(fs.readdirSync(root).length, 0, 'nothing left under --root');
  });
});

test('a config.json that fails validation: the helper, started while it is validated, is gone too; nothing is left', async () => {
  await withCleanup(async (defer) => {
    const { root, bundle } = env(defer, { process: LOOP });
    const cfg = path.join(bundle, 'config.json');
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.process.args = [];
    fs.writeFileSync(cfg, JSON.stringify(c));
    const shoalProcs = () => spawnSync('pgrep', ['-f', 'shoal'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    const before = new Set(shoalProcs());
    const r = spawnSync(process.execPath, [shoalBin(), '--root', root, 'create', '-b', bundle, uniqueId('er')], {
      encoding: 'utf8',
      env: { ...process.env, SHOAL_TRACE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 30_000,
    });
    assert.is(r.status, 1, r.stderr);
    const spawned = r.stderr.indexOf('helper spawned'), problem = r.stderr.indexOf('config.json: process.args');
    assert.ok(problem > 0, r.stderr);
    assert.ok(spawned >= 0 && spawned < problem, 'the helper was started before the validation failed');
    assert.not.match(r.stderr, /config loaded and validated/);
    const after = shoalProcs().filter((p) => !before.has(p) && fs.existsSync(`/proc/${p}`));
    assert.equal(after.filter((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('shoal')), [], 'no helper left');
    assert.is(fs.existsSync(root) ? fs.readdirSync(root).length : 0, 0, 'nothing left under --root');
  });
});

test('a limit the kernel refuses, found while the init is already set up: create fails naming the file, nothing left (no cgroup, no process)', async () => {
  // The cgroup is made while the helper clones the init (into the cgroup2 directory) and the
  // init makes its mounts: a cgroup failure then has a live init and a half-made cgroup to undo.
  await withCleanup(async (defer) => {
    const { root, work, bundle } = env(defer, { process: LOOP });
    const cfg = path.join(bundle, 'config.json');
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.linux.resources = { ...(c.linux.resources ?? {}), cpu: { cpus: '999' } };
    fs.writeFileSync(cfg, JSON.stringify(c));
    const before = new Set(spawnSync('pgrep', ['-f', 'shoal'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean));
    for (const cmd of ['create', 'run']) {
      const id = uniqueId('er');
      expectError([cmd, '-b', bundle, id], root, /cpuset\.cpus/, { files: work });
      assert.is(findCgroups(['/sys/fs/cgroup', '-name', id]), '', `no cgroup directory of ${id} is left`);
    }
    const after = spawnSync('pgrep', ['-f', 'shoal'], { encoding: 'utf8' }).stdout.split('\n').filter((p) => p && !before.has(p));
    assert.equal(after.filter((p) => fs.existsSync(`/proc/${p}`) && fs.readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('shoal:')), [], 'no helper or init left');
    assert.is(fs.readdirSync(root).length, 0, 'nothing left under --root');
  });
});

test('--systemd-cgroup on a host without systemd fails naming systemd', async () => {
  await withCleanup(async (defer) => {
    const { root, work, bundle } = env(defer, { process: LOOP });
    expectError(['--systemd-cgroup', 'create', '-b', bundle, uniqueId('er')], root, /systemd/i, { files: work });
    expectError(['--systemd-cgroup', 'run', '-b', bundle, uniqueId('er')], root, /systemd/i);
  });
});

test('--log F --log-format json appends errors as JSON lines {level:"error", msg}', async () => {
  await withCleanup(async (defer) => {
    const { root, work } = env(defer);
    const log = path.join(work, 'log.json');
    fs.writeFileSync(log, '{"level":"info","msg":"earlier line","time":"2020-01-01T00:00:00Z"}\n');
    const id = uniqueId('er');
    expectError(['--log', log, '--log-format', 'json', 'state', id], root, /container does not exist/);
    expectError(['--log', log, '--log-format=json', 'kill', id], root, /container does not exist/);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.is(lines[0], '{"level":"info","msg":"earlier line","time":"2020-01-01T00:00:00Z"}', 'the log is appended to');
    const entries = lines.slice(1).map((l) => JSON.parse(l));
    assert.is(entries.length, 2, lines.join('\n'));
    for (const e of entries) {
      assert.is(e.level, 'error');
      assert.match(e.msg, /container does not exist/);
      assert.type(e.time, 'string');
    }
  });
});

test.run();
