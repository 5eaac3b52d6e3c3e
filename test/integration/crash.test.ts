/*
 * A shoal process killed with SIGKILL at any stage of `create` must leave nothing that
 * `delete --force` cannot clean. Hooks that block pause create at a known stage: the runtime's
 * prestart/createRuntime hooks (run by the CLI) and createContainer (run by the init inside the
 * container's namespaces). After `delete --force`: no state dir, no cgroup, no process of the
 * container (by cgroup, by command line, the recorded init pid, the killed CLI's descendants).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { alive, cgroupsOf, processesOf, processStat, runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, removeRoot, Defer } from '../lib/shoal';
import { makeBundle } from '../lib/rootfs';
import type { Hooks } from '../../spec/src/config';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Every live pid below `pid` (children, grandchildren ...). */
function descendants(pid: number): number[] {
  const all = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of all) if (processStat(c)?.ppid === p && !out.includes(c)) { out.push(c); walk(c); }
  };
  walk(pid);
  return out;
}

interface Env { root: string; work: string; bundle: string; id: string }

/** A bundle whose hooks (if any) write `<work>/<stage>.started` and then block. */
function env(defer: Defer, hooks?: Hooks): Env {
  const root = tmpRoot();
  const id = uniqueId('cr');
  // Last resort after a failed test: remove the (empty) cgroup dirs shoal leaked, deepest first.
  defer(() => cgroupsOf(id).split('\n').filter(Boolean).reverse().forEach((d) => { try { fs.rmdirSync(d); } catch { /* busy or gone */ } }));
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-crash-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const bundle = makeBundle({ process: { args: ['sh', '-c', 'while :; do sleep 1; done'] }, hooks }, { dir: path.join(work, 'bundle') });
  // Runtime-side hooks run on the host: once the CLI is killed they are orphans of the test.
  defer(() => {
    for (const f of fs.existsSync(work) ? fs.readdirSync(work).filter((n) => n.endsWith('.hookpid')) : []) {
      try { process.kill(Number(fs.readFileSync(path.join(work, f), 'utf8')), 'SIGKILL'); } catch { /* gone */ }
    }
  });
  return { root, work, bundle, id };
}

/**
 * A hook that records that it runs, then blocks. A runtime-side hook also records its host pid
 * (inside the container $$ is a pid of the container's namespace: never recorded).
 */
function blockingHook(work: string, stage: string, hostSide: boolean) {
  const pid = hostSide ? `echo $$ > ${work}/${stage}.hookpid; ` : '';
  return { path: '/bin/sh', args: ['sh', '-c', `${pid}touch ${work}/${stage}.started; exec sleep 120`] };
}

/** Spawns `shoal create` with its stdio on /dev/null and returns the child. */
function spawnCreate(e: Env, defer: Defer) {
  const child = spawn(process.execPath, [shoalBin(), '--root', e.root, 'create', '--bundle', e.bundle, e.id], { stdio: 'ignore' });
  defer(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited };
}

/** SIGKILL the CLI, then `delete --force` must succeed and leave no trace of the container. */
async function killAndCheckCleanup(e: Env, child: { pid?: number; kill(s: NodeJS.Signals): boolean }, exited: Promise<void>, ignore: number[] = []) {
  child.kill('SIGSTOP'); // freeze the stage first: listing its descendants takes a while
  const below = descendants(child.pid!);
  child.kill('SIGKILL');
  await exited;
  let statePid = 0, stateBefore = '(no state.json)';
  try {
    stateBefore = fs.readFileSync(path.join(e.root, e.id, 'state.json'), 'utf8');
    statePid = JSON.parse(stateBefore).pid;
  } catch { /* not written yet */ }
  await sleep(50);
  const d = runShoal(['delete', '--force', e.id], { root: e.root });
  assert.is(d.code, 0, `delete --force after the crash: ${d.stderr}`);
  assert.not.ok(fs.existsSync(path.join(e.root, e.id)), 'state dir left');
  assert.is(cgroupsOf(e.id), '', `cgroup dirs left after delete --force (state.json before it: ${stateBefore.slice(0, 60)}...${stateBefore.match(/"cgroup":[^,]*/)?.[0]})`);
  const left = () => [...processesOf(e.id), ...below.filter((p) => !ignore.includes(p) && alive(p)), ...(statePid && alive(statePid) ? [statePid] : [])];
  await waitFor('container processes to go', () => left().length === 0, 5000).catch(() => {
    const desc = left().map((p) => `${p}:${fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim()}`);
    assert.unreachable(`processes left: ${desc.join(', ')}`);
  });
  assert.is(runShoal(['state', e.id], { root: e.root }).code, 1);
}

test('(a) killed right after the state dir appears', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer);
    const { child, exited } = spawnCreate(e, defer);
    const dir = path.join(e.root, e.id);
    const deadline = Date.now() + 15_000;
    while (!fs.existsSync(dir) && Date.now() < deadline) { /* busy-wait: the window is short */ }
    assert.ok(fs.existsSync(dir), 'state dir never appeared');
    await killAndCheckCleanup(e, child, exited);
  });
});

test('(a2) killed right after its cgroup directories appear (before the state records them)', async () => {
  const hierarchies = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2').map((f) => f[1]);
  for (let attempt = 0; attempt < 3; attempt++) {
    await withCleanup(async (defer) => {
      const e = env(defer);
      const cgdirs = hierarchies.map((h) => path.join(h, e.id));
      const { child, exited } = spawnCreate(e, defer);
      const deadline = Date.now() + 15_000;
      while (!cgdirs.some((d) => fs.existsSync(d)) && Date.now() < deadline) { /* busy-wait: the window is short */ }
      await killAndCheckCleanup(e, child, exited);
    });
  }
});

for (const stage of ['prestart', 'createRuntime'] as const) {
  test(`(b) killed while a ${stage} hook (run by the runtime) runs`, async () => {
    await withCleanup(async (defer) => {
      const e = env(defer, { [stage]: [blockingHook('WORK', stage, true)] });
      fixHookDir(e, stage);
      const { child, exited } = spawnCreate(e, defer);
      await waitFor(`${stage} hook`, () => fs.existsSync(path.join(e.work, `${stage}.started`)));
      const hookPid = Number(fs.readFileSync(path.join(e.work, `${stage}.hookpid`), 'utf8'));
      assert.ok(JSON.parse(fs.readFileSync(path.join(e.root, e.id, 'state.json'), 'utf8')).pid > 0, 'init exists at this stage');
      await killAndCheckCleanup(e, child, exited, [hookPid]);
    });
  });
}

test('(c) killed while a createContainer hook (inside the container) runs', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, { createContainer: [blockingHook('WORK', 'createContainer', false)] });
    fixHookDir(e, 'createContainer');
    const { child, exited } = spawnCreate(e, defer);
    await waitFor('createContainer hook', () => fs.existsSync(path.join(e.work, 'createContainer.started')));
    await killAndCheckCleanup(e, child, exited);
  });
});

test('(d) after create finished, before start: delete --force; also after the init died', async () => {
  for (const killInit of [false, true]) {
    await withCleanup(async (defer) => {
      const e = env(defer);
      const { child, exited } = spawnCreate(e, defer);
      await exited;
      assert.is(child.exitCode, 0);
      const s = JSON.parse(runShoal(['state', e.id], { root: e.root }).stdout);
      assert.is(s.status, 'created');
      if (killInit) {
        process.kill(s.pid, 'SIGKILL');
        await waitFor('stopped', () => JSON.parse(runShoal(['state', e.id], { root: e.root }).stdout).status === 'stopped');
      }
      await killAndCheckCleanup(e, child, exited);
      assert.not.ok(alive(s.pid));
    });
  }
});

test('killed at several points in time during create', async () => {
  // How long a full create takes here, then kill at fractions of it.
  const t0 = Date.now();
  await withCleanup(async (defer) => {
    const e = env(defer);
    await spawnCreate(e, defer).exited;
    assert.is(runShoal(['delete', '--force', e.id], { root: e.root }).code, 0);
  });
  const full = Date.now() - t0;
  for (const frac of [0.4, 0.6, 0.8, 1.0]) {
    await withCleanup(async (defer) => {
      const e = env(defer);
      const { child, exited } = spawnCreate(e, defer);
      await sleep(full * frac);
      await killAndCheckCleanup(e, child, exited);
    });
  }
});

test('delete --force of a running container', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer);
    const err = path.join(e.work, 'stderr');
    const fd = fs.openSync(err, 'w');
    const r = spawnSync(process.execPath, [shoalBin(), '--root', e.root, 'run', '-d', '-b', e.bundle, e.id], { stdio: ['ignore', 'ignore', fd] });
    fs.closeSync(fd);
    assert.is(r.status, 0, fs.readFileSync(err, 'utf8'));
    const s = JSON.parse(runShoal(['state', e.id], { root: e.root }).stdout);
    assert.is(s.status, 'running');
    assert.ok(processesOf(e.id).includes(s.pid));
    const d = runShoal(['delete', '--force', e.id], { root: e.root });
    assert.is(d.code, 0, d.stderr);
    assert.not.ok(fs.existsSync(path.join(e.root, e.id)));
    assert.is(cgroupsOf(e.id), '');
    await waitFor('no process', () => processesOf(e.id).length === 0 && !alive(s.pid), 5000);
  });
});

test('a restore killed while its rootfs bind is mounted: delete --force unmounts it, the rootfs stays', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer);
    await spawnCreate(e, defer).exited;
    // What `restore` holds while CRIU runs: a rootfs (here a stand-in) bound onto
    // <state dir>/criu-root.
    const criuRoot = path.join(e.root, e.id, 'criu-root');
    const standIn = path.join(e.work, 'rootfs-stand-in');
    fs.mkdirSync(path.join(standIn, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(standIn, 'bin', 'sh'), '');
    fs.mkdirSync(criuRoot);
    assert.is(spawnSync('mount', ['--bind', standIn, criuRoot]).status, 0, 'bind the rootfs');
    defer(() => void spawnSync('umount', ['-l', criuRoot]));
    const d = runShoal(['delete', '--force', e.id], { root: e.root });
    assert.is(d.code, 0, d.stderr);
    assert.not.ok(fs.existsSync(path.join(e.root, e.id)), 'state dir removed');
    assert.ok(fs.existsSync(path.join(standIn, 'bin', 'sh')), 'the rootfs was not walked into');
    assert.not.ok(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(criuRoot), 'no mount left');
  });
});

/** The hook scripts name the work dir, known only after env(): substitute it in config.json. */
function fixHookDir(e: Env, _stage: string): void {
  const cfg = path.join(e.bundle, 'config.json');
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').split('WORK/').join(`${e.work}/`));
}

test.run();
