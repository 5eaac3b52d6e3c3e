/*
 * The installed CLI (build/shoal.js, the bundle's loader) keeps a V8 code cache per hot command,
 * written once by the first call that covers the command. A call that failed early (a missing
 * bundle, an unknown id) has compiled little of its command: a cache written then would leave
 * every later call compiling the rest, so only a call that went through writes it. And a call
 * that takes another path (`run -d`, foreground `run`) adds that path's code to the cache.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../../shim/src/native';
import { tmpRoot, uniqueId, withCleanup, removeRoot, Defer } from '../lib/shoal';
import { makeBundle } from '../lib/rootfs';

/** A copy of the installed CLI (loader and bundle) whose caches are this test's own. */
function installCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-codecache-'));
  const build = path.join(repoRoot(), 'build');
  fs.writeFileSync(path.join(dir, 'binding.gyp'), '{}\n'); // marks the package root for the addon lookup
  fs.mkdirSync(path.join(dir, 'build'));
  fs.symlinkSync(path.join(build, 'Release'), path.join(dir, 'build', 'Release'));
  for (const f of ['shoal.js', 'shoal.bundle.js']) fs.copyFileSync(path.join(build, f), path.join(dir, 'build', f));
  return dir;
}

/** `node COPY/build/shoal.js --root ROOT ...args`, stdio to files (a container keeps our stdio). */
function shoal(copy: string, root: string, args: string[]): { code: number; stderr: string } {
  const err = path.join(copy, 'stderr');
  const e = fs.openSync(err, 'w');
  try {
    const env = { ...process.env };
    delete env.SHOAL_TRACE;
    const r = spawnSync(process.execPath, [path.join(copy, 'build', 'shoal.js'), '--root', root, ...args], { stdio: ['ignore', 'ignore', e], env, timeout: 30_000 });
    return { code: r.status ?? -1, stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    fs.closeSync(e);
  }
}

/**
 * The commands the cache file of `cmd` says it covers (its first line): '' when there is none or
 * it covers nothing (the loader writes one at its first run, which a covering call replaces).
 */
function covers(copy: string, cmd: string): string {
  const f = path.join(copy, 'build', `shoal.bundle.js.${cmd}.cache`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'latin1').split('\n', 1)[0] : '';
}

/**
 * A copy of the CLI, a state root and a bundle running `true` (all removed by `defer`), and the
 * suffix a pure cgroup v2 host adds to every kind of call.
 */
function setUp(defer: Defer): { copy: string; root: string; bundle: string; v2: string } {
  const copy = installCopy();
  defer(() => fs.rmSync(copy, { recursive: true, force: true }));
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const bundle = makeBundle({ process: { args: ['true'] } });
  defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
  return { copy, root, bundle, v2: fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '@v2' : '' };
}

test('a failing call writes no code cache for its command; the first call that goes through does', async () => {
  await withCleanup(async (defer) => {
    const { copy, root, bundle, v2 } = setUp(defer);

    let r = shoal(copy, root, ['create', '--bundle', path.join(copy, 'no-such-bundle'), uniqueId('cc')]);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /no-such-bundle/);
    assert.is(covers(copy, 'create'), '', 'a create that failed left the create cache covering nothing');
    r = shoal(copy, root, ['state', uniqueId('missing')]);
    assert.is.not(r.code, 0);
    assert.is(covers(copy, 'state'), '', 'so did a state of an unknown id');

    const id = uniqueId('cc');
    r = shoal(copy, root, ['create', '--bundle', bundle, id]);
    assert.is(r.code, 0, r.stderr);
    assert.is(covers(copy, 'create'), `create${v2}`, 'the first create that went through wrote the cache');
    r = shoal(copy, root, ['state', id]);
    assert.is(r.code, 0, r.stderr);
    assert.is(covers(copy, 'state'), `state${v2}`);
    r = shoal(copy, root, ['delete', '--force', id]);
    assert.is(r.code, 0, r.stderr);
    assert.is(covers(copy, 'delete'), `delete${v2}`);
    assert.not.ok(fs.existsSync(path.join(root, id)), 'deleted');
  });
});

/** Identity of a cache file's current version (a rewrite renames a new file over it). */
function stamp(copy: string, cmd: string): string {
  const st = fs.statSync(path.join(copy, 'build', `shoal.bundle.js.${cmd}.cache`));
  return `${st.ino}:${st.size}`;
}

test('each kind of call grows its command\'s cache once: run -d, then a foreground run', async () => {
  await withCleanup(async (defer) => {
    const { copy, root, bundle, v2 } = setUp(defer);

    const detached = uniqueId('cc');
    let r = shoal(copy, root, ['run', '-d', '--bundle', bundle, detached]);
    assert.is(r.code, 0, r.stderr);
    assert.is(covers(copy, 'run'), `run+d${v2}`);
    const afterDetached = stamp(copy, 'run');
    r = shoal(copy, root, ['run', '--bundle', bundle, uniqueId('cc')]);
    assert.is(r.code, 0, r.stderr);
    assert.is(covers(copy, 'run'), [`run${v2}`, `run+d${v2}`].sort().join(','), 'the foreground path added');
    assert.is.not(stamp(copy, 'run'), afterDetached);
    const both = stamp(copy, 'run');
    assert.ok(fs.statSync(path.join(copy, 'build', 'shoal.bundle.js.run.cache')).size > 0);
    r = shoal(copy, root, ['run', '--bundle', bundle, uniqueId('cc')]);
    assert.is(r.code, 0, r.stderr);
    r = shoal(copy, root, ['run', '-d', '--bundle', bundle, uniqueId('cc')]);
    assert.is(r.code, 0, r.stderr);
    assert.is(stamp(copy, 'run'), both, 'kinds already covered leave the cache alone');
  });
});

test.run();
