/*
 * `shoal gen`: image-less bundles from host programs. The generated bundle for node, with nothing
 * but a skeleton rootfs and read-only bind mounts of node's ELF closure, must run under
 * `shoal run` and print 42; with --include, data appears at its host path; with --store, two
 * bundles mount the same store objects.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { runShoal, shoalBin, tmpRoot, uniqueId, withCleanup, removeRoot } from '../lib/shoal';

const NODE = fs.realpathSync(process.execPath);
const genCmd = !/does not exist/.test(runShoal(['gen']).stderr);

/** `shoal gen ...`, through the CLI when main.ts has the command, else the module directly. */
function shoalGen(args: string[]): { code: number; stdout: string; stderr: string } {
  if (genCmd) return runShoal(['gen', ...args]);
  const dir = path.dirname(shoalBin());
  const js = `const c=require(${JSON.stringify(path.join(dir, 'context'))}).makeContext({});
require(${JSON.stringify(path.join(dir, 'gen'))}).run(c, process.argv.slice(1)).then((r)=>process.exitCode=r,(e)=>{console.error(e.message);process.exitCode=1})`;
  const r = spawnSync(process.execPath, ['-e', js, '--', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function tmp(prefix: string, defer: (f: () => unknown) => void): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  defer(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('gen: a bundle for node prints 42 under shoal run', async () => {
  await withCleanup(async (defer) => {
    const dir = tmp('shoal-gen-', defer);
    const bundle = path.join(dir, 'bundle');
    const g = shoalGen(['--out', bundle, '--', NODE, '-e', 'console.log(6*7)']);
    assert.is(g.code, 0, g.stderr);
    assert.match(g.stdout, /^gen: .*: \d+ files \([\d.]+ MiB\) bind-mounted read-only from the host, \d+ symlinks, \d+ mounts; bundle on disk \d+ KiB\n$/);
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    assert.equal(spec.process.args, [NODE, '-e', 'console.log(6*7)']);
    assert.is(spec.root.readonly, true);
    assert.is(spec.process.terminal, false);
    const libc = spec.mounts.find((m: { destination: string }) => m.destination.endsWith('/libc.so.6'));
    assert.ok(libc && libc.options.includes('ro'), 'libc is bind-mounted read-only');
    // The rootfs itself holds no file content: only mount points, symlinks and /etc basics.
    const big = fs.readdirSync(path.join(bundle, 'rootfs/usr/lib/x86_64-linux-gnu')).map((f) => fs.lstatSync(path.join(bundle, 'rootfs/usr/lib/x86_64-linux-gnu', f)).size);
    assert.ok(big.every((s) => s < 64), 'mount points are empty');
    const root = tmpRoot();
    defer(() => removeRoot(root));
    const r = runShoal(['run', '-b', bundle, uniqueId('gen')], { root });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '42\n');
  });
});

test('gen --include: data files appear at their host path, read-only', async () => {
  await withCleanup(async (defer) => {
    const dir = tmp('shoal-gen-', defer);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'msg.txt'), 'hello from the host\n');
    const bundle = path.join(dir, 'bundle');
    const script = `const fs=require('fs');process.stdout.write(fs.readFileSync('${data}/msg.txt','utf8'));try{fs.writeFileSync('${data}/x','1')}catch(e){console.log(e.code)}`;
    const g = shoalGen(['--out', bundle, '--include', data, '--', NODE, '-e', script]);
    assert.is(g.code, 0, g.stderr);
    const root = tmpRoot();
    defer(() => removeRoot(root));
    const r = runShoal(['run', '-b', bundle, uniqueId('gen')], { root });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'hello from the host\nEROFS\n');
  });
});

test('gen --store: two bundles mount the same store objects and both run', async () => {
  await withCleanup(async (defer) => {
    const dir = tmp('shoal-gen-', defer);
    const store = path.join(dir, 'store');
    const sources: string[][] = [];
    const root = tmpRoot();
    defer(() => removeRoot(root));
    for (const name of ['b1', 'b2']) {
      const bundle = path.join(dir, name);
      const g = shoalGen(['--store', store, '--out', bundle, '--', NODE, '-e', 'console.log(6*7)']);
      assert.is(g.code, 0, g.stderr);
      assert.match(g.stdout, /from layer gen-node-/);
      const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
      const binds = spec.mounts.filter((m: { type: string }) => m.type === 'bind').map((m: { source: string }) => m.source);
      assert.ok(binds.length >= 4 && binds.every((s: string) => s.startsWith(path.join(store, 'objects/sha256/'))), binds.join(' '));
      sources.push(binds);
      const r = runShoal(['run', '-b', bundle, uniqueId('gen')], { root });
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout, '42\n');
    }
    assert.equal(sources[0], sources[1]);
  });
});

test('gen: a missing program is a clear error', () => {
  const g = shoalGen(['--out', path.join(os.tmpdir(), uniqueId('nope')), '--', 'no-such-program-xyz']);
  assert.is(g.code, 1);
  assert.match(g.stderr, /no-such-program-xyz: not found in PATH/);
});

test.run();
