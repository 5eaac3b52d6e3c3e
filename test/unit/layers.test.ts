/* The layer store (add, dedupe, rm, gc, users), its lock, the rootfs digest cache and planSharing. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { LayerStore } from '../../shim/src/layers/store';
import { withLock } from '../../shim/src/layers/lock';
import { digestFile } from '../../shim/src/layers/hash';
import { planSharing, parseLayersAnnotation } from '../../shim/src/layers/share';
import { DigestCache } from '../../shim/src/layers/digest-cache';
import { sharingRequested, parseShareMode } from '../../shim/src/layers/config';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
// The host's /etc/shoal/config.json (a default share mode) must not leak into these tests.
process.env.SHOAL_CONFIG = '/nonexistent/shoal-config.json';
const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-layers-'));
  dirs.push(d);
  return d;
}
test.after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tree(files: Record<string, string | Buffer>, modes: Record<string, number> = {}): string {
  const d = tmp();
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
    fs.writeFileSync(path.join(d, rel), data, { mode: modes[rel] ?? 0o644 });
  }
  return d;
}

const objectCount = (s: LayerStore) => fs.readdirSync(path.join(s.dir, 'objects/sha256')).length;

test('addDirectory: every file stored once by digest, read-only and root-owned', () => {
  const s = new LayerStore(path.join(tmp(), 'store'));
  const src = tree({ 'a/x.txt': 'same', 'b/y.txt': 'same', 'c.txt': 'other', 'bin/tool': '#!/bin/sh\n' }, { 'bin/tool': 0o755 });
  fs.symlinkSync('c.txt', path.join(src, 'link'));
  const l = s.addDirectory(src, 'one');
  assert.is(l.files.length, 5);
  assert.is(objectCount(s), 3, 'identical files dedupe');
  const x = l.files.find((f) => f.path === 'a/x.txt')!;
  assert.is(x.digest, digestFile(path.join(src, 'a/x.txt')));
  assert.is(l.files.find((f) => f.path === 'link')!.digest, l.files.find((f) => f.path === 'c.txt')!.digest);
  const st = fs.statSync(s.lookup(x.digest)!);
  assert.is(st.mode & 0o7777, 0o444);
  assert.is(st.uid, 0);
  assert.is(fs.statSync(s.lookup(l.files.find((f) => f.path === 'bin/tool')!.digest)!).mode & 0o7777, 0o555, 'executables keep an exec bit');
  assert.is(s.lookup('sha256:' + '0'.repeat(64)), null);
  // A second layer with the same content adds no object; refcounts count both layers.
  s.addDirectory(src, 'two');
  assert.is(objectCount(s), 3);
  assert.is(s.objects()[x.digest].refs, 4);
  assert.equal(s.list().map((l) => l.name), ['one', 'two']);
});

test('remove + gc: objects go only when no layer and no live container uses them', () => {
  const base = tmp();
  const s = new LayerStore(path.join(base, 'store'));
  const a = s.addDirectory(tree({ 'f1': 'one', 'shared': 'both' }), 'a');
  s.addDirectory(tree({ 'f2': 'two', 'shared': 'both' }), 'b');
  assert.is(objectCount(s), 3);
  s.remove('a');
  assert.throws(() => s.remove('a'), /does not exist/);
  assert.is(objectCount(s), 3, 'rm keeps objects until gc');
  // A live container (state dir exists) keeps f1 alive; a dead one (dir gone) does not count.
  const live = path.join(base, 'state-live');
  fs.mkdirSync(live);
  const f1 = a.files.find((f) => f.path === 'f1')!.digest;
  s.registerUse('c-live', [f1], live);
  s.registerUse('c-dead', [f1], path.join(base, 'state-gone'));
  let r = s.gc();
  assert.equal(r.removed, []);
  assert.equal(r.deadUsers, ['c-dead']);
  assert.is(objectCount(s), 3);
  s.releaseUse('c-live', live);
  r = s.gc();
  assert.equal(r.removed, [f1]);
  assert.is(r.freedBytes, 3);
  // An explicit in-use set is honoured too.
  const f2 = s.get('b')!.files.find((f) => f.path === 'f2')!.digest;
  s.remove('b');
  r = s.gc(new Set([f2]));
  assert.is(r.removed.length, 1, 'only "shared" goes');
  assert.ok(s.lookup(f2));
  assert.throws(() => s.registerUse('c', ['sha256:' + 'f'.repeat(64)]), /missing/);
});

test('withLock: a second process waits; a dead holder is broken', async () => {
  const d = tmp();
  const lock = path.join(d, 'lock');
  fs.writeFileSync(lock, '999999999'); // no such pid
  assert.is(withLock(lock, () => 7), 7);
  assert.not.ok(fs.existsSync(lock));
  // A live holder: a child takes the lock for 300 ms; we must wait for it.
  const child = spawn(process.execPath, ['-e', `
    const fs=require('fs');fs.writeFileSync(${JSON.stringify(lock)}, String(process.pid));
    setTimeout(()=>fs.unlinkSync(${JSON.stringify(lock)}),300);`]);
  for (let i = 0; i < 500 && !fs.existsSync(lock); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fs.existsSync(lock), 'child took the lock');
  // Inside our critical section the child must already have released its hold (it unlinks the
  // lock when done): ordering, not timing, shows that we waited.
  let childStillHolding = false;
  withLock(lock, () => {
    childStillHolding = fs.existsSync(lock) && Number(fs.readFileSync(lock, 'utf8')) === child.pid;
  });
  assert.not.ok(childStillHolding, 'waited for the holder');
  await new Promise((r) => child.on('exit', r));
});

test('concurrent writers never lose a layer', async () => {
  const store = path.join(tmp(), 'store');
  const mod = path.join(__dirname, '../../shim/src/layers/store.js');
  const kids = Array.from({ length: 4 }, (_, i) => {
    const src = tree({ [`f${i}`]: `content ${i}`, common: 'x' });
    return new Promise<number>((r) =>
      spawn(process.execPath, ['-e', `const {LayerStore}=require(${JSON.stringify(mod)});new LayerStore(${JSON.stringify(store)}).addDirectory(${JSON.stringify(src)},'l${i}')`], { stdio: 'inherit' }).on('exit', (c) => r(c ?? -1)),
    );
  });
  assert.equal(await Promise.all(kids), [0, 0, 0, 0]);
  const s = new LayerStore(store);
  assert.equal(s.list().map((l) => l.name), ['l0', 'l1', 'l2', 'l3']);
  assert.is(s.objects()[digestFile(path.join(s.lookup(s.get('l0')!.files.find((f) => f.path === 'common')!.digest)!))].refs, 4);
});

test('planSharing libs: shares ELF shared objects found in the store, caches digests', () => {
  const s = new LayerStore(path.join(tmp(), 'store'));
  const lib = fs.readFileSync(LIBC);
  s.addDirectory(tree({ 'libc.so.6': lib, 'notes.txt': 'same text' }), 'base');
  const rootfs = tree({
    'usr/lib/x86_64-linux-gnu/libc.so.6': lib,
    'usr/lib/notes.so.txt': 'same text', // named like a library, but not ELF
    'usr/share/doc.txt': 'same text',
    'etc/other.so': 'x',
  });
  fs.symlinkSync('usr/lib', path.join(rootfs, 'lib'));
  const p = planSharing({ rootfs, annotations: { 'org.shoal.share': 'libs' }, readonlyRootfs: true, store: s });
  assert.equal(p.mounts.map((m) => m.destination), ['/usr/lib/x86_64-linux-gnu/libc.so.6']);
  assert.is(p.mounts[0].source, s.lookup(digestFile(LIBC)));
  assert.equal(p.digests, [digestFile(LIBC)]);
  assert.is(p.stats.hashed, 1);
  const again = planSharing({ rootfs, annotations: { 'org.shoal.share': 'libs' }, readonlyRootfs: true, store: s });
  assert.is(again.stats.hashed, 0, 'second plan uses the digest cache');
  // A changed file (new identity) is hashed again and no longer matches.
  fs.appendFileSync(path.join(rootfs, 'usr/lib/x86_64-linux-gnu/libc.so.6'), 'x');
  assert.equal(planSharing({ rootfs, annotations: { 'org.shoal.share': 'libs' }, readonlyRootfs: true, store: s }).mounts, []);
  // "all" shares every matching regular file.
  const all = planSharing({ rootfs, annotations: { 'org.shoal.share': 'all' }, readonlyRootfs: true, store: s });
  assert.equal(all.mounts.map((m) => m.destination), ['/usr/lib/notes.so.txt', '/usr/share/doc.txt']);
  const ex = planSharing({ rootfs, annotations: { 'org.shoal.share': 'all', 'org.shoal.share.exclude': '/usr/share' }, readonlyRootfs: true, store: s });
  assert.equal(ex.mounts.map((m) => m.destination), ['/usr/lib/notes.so.txt']);
});

test('planSharing: off by default, writable=skip, explicit layers, bad annotations', () => {
  const s = new LayerStore(path.join(tmp(), 'store'));
  s.addDirectory(tree({ 'bin/app': 'app', 'share/x': 'x' }), 'tools');
  const rootfs = tree({ 'etc/hostname': 'h' });
  assert.equal(planSharing({ rootfs, annotations: {}, readonlyRootfs: true, store: s }).mounts, []);
  const skip = planSharing({ rootfs, annotations: { 'org.shoal.share': 'all', 'org.shoal.share.writable': 'skip' }, readonlyRootfs: false, store: s });
  assert.equal(skip.mounts, []);
  assert.match(skip.warnings.join(), /writable/);
  const p = planSharing({ rootfs, annotations: { 'org.shoal.layers': 'tools:/opt/tools' }, readonlyRootfs: true, store: s });
  assert.equal(p.mounts.map((m) => m.destination), ['/opt/tools/bin/app', '/opt/tools/share/x']);
  assert.is(p.digests.length, 2);
  assert.throws(() => planSharing({ rootfs, annotations: { 'org.shoal.layers': 'nope:/x' }, readonlyRootfs: true, store: s }), /not in the layer store/);
  assert.throws(() => planSharing({ rootfs, annotations: { 'org.shoal.share': 'some' }, readonlyRootfs: true, store: s }), /unknown value/);
});

test('annotation parsing and sharingRequested', () => {
  assert.equal(parseLayersAnnotation('a:/x, b:/y'), [{ name: 'a', path: '/x' }, { name: 'b', path: '/y' }]);
  assert.equal(parseLayersAnnotation('{"a":"/x"}'), [{ name: 'a', path: '/x' }]);
  assert.equal(parseLayersAnnotation('[{"name":"a","path":"/x"},"b:/y"]'), [{ name: 'a', path: '/x' }, { name: 'b', path: '/y' }]);
  assert.throws(() => parseLayersAnnotation('a:relative'), /absolute/);
  assert.throws(() => parseLayersAnnotation('{bad'), /invalid JSON/);
  assert.is(parseShareMode('off'), null);
  assert.is(parseShareMode('libs'), 'libs');
  assert.ok(sharingRequested({ 'org.shoal.share': 'libs' }));
  assert.ok(sharingRequested({ 'org.shoal.layers': 'a:/x' }));
  assert.not.ok(sharingRequested({ 'org.shoal.share': 'off' }));
});

test('digest cache: a create that looks at fewer files keeps the others; vanished files go', () => {
  const root = tmp();
  fs.writeFileSync(path.join(root, 'a'), 'aaa');
  fs.writeFileSync(path.join(root, 'b'), 'bbb');
  const cacheDir = path.join(tmp(), 'cache');
  const st = (f: string) => fs.lstatSync(path.join(root, f), { bigint: true });
  const c1 = new DigestCache(cacheDir, root);
  c1.digest('a', st('a'));
  c1.digest('b', st('b'));
  c1.save();
  const c2 = new DigestCache(cacheDir, root); // e.g. share=libs: only looks at b
  c2.digest('b', st('b'));
  c2.save();
  const c3 = new DigestCache(cacheDir, root);
  assert.is(c3.digest('a', st('a')), digestFile(path.join(root, 'a')));
  assert.is(c3.hashed, 0, 'a was still cached');
  fs.rmSync(path.join(root, 'b'));
  c3.save();
  const c4 = new DigestCache(cacheDir, root);
  fs.writeFileSync(path.join(root, 'b'), 'bbb');
  c4.digest('b', st('b'));
  assert.is(c4.hashed, 1, 'the vanished file was dropped from the cache');
});

test.run();
