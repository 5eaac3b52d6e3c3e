/*
 * Mounts made by the init helper with the new mount API, through the CLI: recursive attributes
 * (rro reaches sub-mounts, plain ro does not), idmapped bind mounts, tmpcopyup, and a mount on the
 * rootfs itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { runShoal, tmpRoot, uniqueId, withCleanup, removeRoot, Defer } from '../lib/shoal';
import { makeBundle, BundleOverrides, defaultSpec } from '../lib/rootfs';

/** A state root, a work dir with a host directory `src` holding a tmpfs sub-mount, and a bundle. */
function env(defer: Defer, mounts: NonNullable<BundleOverrides['mounts']>, args: string[]) {
  const root = tmpRoot();
  defer(() => removeRoot(root));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-helper-mnt-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'file'), 'x');
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(src, 'sub')]);
  defer(() => execFileSync('umount', ['-l', path.join(src, 'sub')]));
  const bundle = makeBundle(
    { process: { args }, mounts: [...defaultSpec().mounts!, ...mounts.map((m) => ({ ...m, source: m.source === 'SRC' ? src : m.source }))] },
    { dir: path.join(work, 'bundle') },
  );
  return { root, bundle, src, id: uniqueId('hm') };
}

const probe = 'touch /m/top 2>/dev/null && echo top-rw || echo top-ro; touch /m/sub/s 2>/dev/null && echo sub-rw || echo sub-ro';

test('rro makes every sub-mount read-only; ro only the top mount', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, [{ destination: '/m', type: 'bind', source: 'SRC', options: ['rbind', 'rro'] }], ['sh', '-c', probe]);
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n'), ['top-ro', 'sub-ro']);
    const p = env(defer, [{ destination: '/m', type: 'bind', source: 'SRC', options: ['rbind', 'ro'] }], ['sh', '-c', probe]);
    const q = runShoal(['run', '-b', p.bundle, p.id], { root: p.root });
    assert.is(q.code, 0, q.stderr);
    assert.equal(q.stdout.trim().split('\n'), ['top-ro', 'sub-rw']);
  });
});

test('rnoexec and rnosuid reach sub-mounts (mountinfo flags)', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, [{ destination: '/m', type: 'bind', source: 'SRC', options: ['rbind', 'rnoexec', 'rnosuid'] }], ['grep', ' /m/sub ', '/proc/self/mountinfo']);
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.is(r.code, 0, r.stderr);
    const opts = r.stdout.split(' ')[5].split(',');
    assert.ok(opts.includes('noexec') && opts.includes('nosuid'), r.stdout);
  });
});

test('an idmapped bind mount shows mapped ownership', async () => {
  await withCleanup(async (defer) => {
    const e = env(
      defer,
      [
        {
          destination: '/id',
          type: 'bind',
          source: 'SRC',
          options: ['bind', 'idmap'],
          uidMappings: [{ containerID: 0, hostID: 1234, size: 1 }],
          gidMappings: [{ containerID: 0, hostID: 4321, size: 1 }],
        },
      ],
      ['stat', '-c', '%u:%g', '/id/file'],
    );
    fs.chownSync(path.join(e.src, 'file'), 0, 0);
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    if (/EINVAL.*MOUNT_ATTR_IDMAP/.test(r.stderr)) return console.log('  (skipped: the temp filesystem has no idmapped mount support)');
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), '1234:4321');
    assert.is(fs.statSync(path.join(e.src, 'file')).uid, 0, 'the host file is unchanged');
  });
});

test('tmpcopyup copies the covered directory into the new tmpfs', async () => {
  await withCleanup(async (defer) => {
    const e = env(defer, [{ destination: '/etc', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'mode=755'] }], [
      'sh',
      '-c',
      'cat /etc/copied; ls -ld /etc/dir | cut -c1-10; grep " /etc " /proc/self/mountinfo | cut -d" " -f9',
    ]);
    const etc = path.join(e.bundle, 'rootfs', 'etc');
    fs.mkdirSync(path.join(etc, 'dir'), { recursive: true, mode: 0o710 });
    fs.chmodSync(path.join(etc, 'dir'), 0o710);
    fs.writeFileSync(path.join(etc, 'copied'), 'hello\n');
    const r = runShoal(['run', '-b', e.bundle, e.id], { root: e.root });
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n'), ['hello', 'drwx--x---', 'tmpfs']);
  });
});

test('a mount on the rootfs itself: the mounts after it are made in it (the init resolves the rootfs again)', async () => {
  await withCleanup(async (defer) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-helper-mnt-'));
    defer(() => fs.rmSync(work, { recursive: true, force: true }));
    const other = makeBundle({}, { dir: path.join(work, 'other') });
    fs.writeFileSync(path.join(other, 'rootfs', 'marker'), 'other rootfs\n');
    const root = tmpRoot();
    defer(() => removeRoot(root));
    const bundle = makeBundle(
      {
        process: { args: ['sh', '-c', 'cat /marker; grep -c " /proc proc " /proc/self/mounts; ls -d /dev/pts /sys/fs/cgroup'] },
        mounts: [{ destination: '/', type: 'bind', source: path.join(other, 'rootfs'), options: ['rbind'] }, ...defaultSpec().mounts!],
      },
      { dir: path.join(work, 'bundle') },
    );
    const r = runShoal(['run', '-b', bundle, uniqueId('hm')], { root });
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n'), ['other rootfs', '1', '/dev/pts', '/sys/fs/cgroup']);
  });
});

test.run();
