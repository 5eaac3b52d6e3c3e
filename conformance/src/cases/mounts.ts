/**
 * config.json `root` and `mounts`, and linux.rootfsPropagation: the probe's
 * /proc/self/mountinfo is compared with what was asked for (fstype, flags, filesystem options,
 * order), and reads/writes through the mounts check that the flags are real.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Case, checkOf, mountAt, Probe } from '../context';
import { check, checkEqual, skip } from '../tap';

const EROFS = 30;

function opts(m: Record<string, any> | undefined): string[] {
  return m ? `${m.options},${m.superOptions}`.split(',') : [];
}

function mustMount(p: Probe, dest: string): Record<string, any> {
  const m = mountAt(p, dest);
  check(m, `no mount at ${dest}`, { mounts: p.mounts.map((x) => `${x.destination} ${x.fstype}`) });
  return m;
}

/** Mount and root cases. */
export const mountCases: Case[] = [
  {
    name: 'root: readonly true',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.root.readonly = true; }, ['--write-file', '/conf-ro-test']);
      check(opts(mustMount(p, '/')).includes('ro'), '/ is not mounted ro', { mount: mountAt(p, '/') });
      checkEqual(checkOf(p, 'write-file', '/conf-ro-test').errno, EROFS, 'errno writing into /');
    },
  },
  {
    name: 'root: readonly false',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.root.readonly = false; }, ['--write-file', '/conf-rw-test']);
      checkEqual(checkOf(p, 'write-file', '/conf-rw-test').ok, true, 'write into /');
    },
  },
  {
    name: 'mounts: default filesystems proc, sysfs, /dev tmpfs, devpts, shm, mqueue',
    async run(ctx) {
      const p = await ctx.probe(() => {}, ['--stat', '/dev/pts/ptmx']);
      const want: Record<string, string> = { '/proc': 'proc', '/sys': 'sysfs', '/dev': 'tmpfs', '/dev/pts': 'devpts', '/dev/shm': 'tmpfs', '/dev/mqueue': 'mqueue' };
      for (const [d, t] of Object.entries(want)) checkEqual(mustMount(p, d).fstype, t, `fstype at ${d}`);
      check(opts(mountAt(p, '/sys')).includes('ro'), '/sys is not ro as configured');
      checkEqual(checkOf(p, 'stat', '/dev/pts/ptmx').type, 'c', '/dev/pts/ptmx is a char device (newinstance devpts)');
      for (const o of ['nosuid', 'noexec', 'nodev']) check(opts(mountAt(p, '/dev/shm')).includes(o), `/dev/shm lacks ${o}`);
    },
  },
  {
    name: 'mounts: tmpfs with size and mode',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/conf/tmp', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=1750', 'nosuid', 'nodev'] });
      }, ['--stat', '/conf/tmp']);
      const m = mustMount(p, '/conf/tmp');
      checkEqual(m.fstype, 'tmpfs', 'fstype');
      const o = opts(m);
      check(o.includes('size=1024k'), 'size=1m not in mount options', { options: o });
      check(o.includes('mode=1750'), 'mode=1750 not in mount options', { options: o });
      check(o.includes('nosuid') && o.includes('nodev'), 'nosuid,nodev missing', { options: o });
      checkEqual(checkOf(p, 'stat', '/conf/tmp').mode, 0o1750, 'mode of the tmpfs root');
    },
  },
  {
    name: 'mounts: bind read-only',
    async run(ctx) {
      const src = ctx.file('bind-ro');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'hello'), 'hello\n');
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/mnt/ro', type: 'bind', source: src, options: ['rbind', 'ro'] });
      }, ['--read', '/mnt/ro/hello', '--write-file', '/mnt/ro/new']);
      check(opts(mustMount(p, '/mnt/ro')).includes('ro'), 'bind mount is not ro', { mount: mountAt(p, '/mnt/ro') });
      checkEqual(checkOf(p, 'read', '/mnt/ro/hello').content, 'hello\n', 'file read through the bind mount');
      checkEqual(checkOf(p, 'write-file', '/mnt/ro/new').errno, EROFS, 'errno writing into the ro bind');
      check(!fs.existsSync(path.join(src, 'new')), 'the write reached the host');
    },
  },
  {
    name: 'mounts: bind read-write reaches the host',
    async run(ctx) {
      const src = ctx.file('bind-rw');
      fs.mkdirSync(src);
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/mnt/rw', type: 'bind', source: src, options: ['bind', 'rw'] });
      }, ['--write-file', '/mnt/rw/new']);
      checkEqual(checkOf(p, 'write-file', '/mnt/rw/new').ok, true, 'write through the rw bind');
      checkEqual(fs.readFileSync(path.join(src, 'new'), 'utf8'), 'probe\n', 'file content on the host');
    },
  },
  {
    name: 'mounts: bind with nosuid,nodev,noexec',
    async run(ctx) {
      const src = ctx.file('bind-flags');
      fs.mkdirSync(src);
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/mnt/flags', type: 'bind', source: src, options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
      });
      const o = opts(mustMount(p, '/mnt/flags'));
      for (const f of ['nosuid', 'nodev', 'noexec']) check(o.includes(f), `${f} missing`, { options: o });
    },
  },
  {
    name: 'mounts: bind a single file',
    async run(ctx) {
      const src = ctx.file('single-file');
      fs.writeFileSync(src, 'single\n');
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/etc/conf-file', type: 'bind', source: src, options: ['bind', 'ro'] });
      }, ['--read', '/etc/conf-file']);
      checkEqual(checkOf(p, 'read', '/etc/conf-file').content, 'single\n', 'content of the bound file');
    },
  },
  {
    name: 'mounts: bind source relative to the bundle',
    async run(ctx) {
      const p = await ctx.probe((c, dir) => {
        c.mounts!.push({ destination: '/mnt/rel', type: 'bind', source: 'reldata', options: ['rbind', 'ro'] });
        fs.mkdirSync(path.join(dir, 'reldata'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'reldata', 'x'), 'relative\n');
      }, ['--read', '/mnt/rel/x']);
      checkEqual(checkOf(p, 'read', '/mnt/rel/x').content, 'relative\n', 'file read through a bundle-relative bind');
    },
  },
  {
    name: 'mounts: destinations missing in the rootfs are created',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/conf/a/b/c', type: 'tmpfs', source: 'tmpfs', options: ['size=64k'] });
      });
      checkEqual(mustMount(p, '/conf/a/b/c').fstype, 'tmpfs', 'fstype');
    },
  },
  {
    name: 'mounts: mounted in order (later mounts stack on earlier ones)',
    async run(ctx) {
      const src = ctx.file('order');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'f'), 'inner\n');
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/conf/outer', type: 'tmpfs', source: 'tmpfs', options: ['size=64k'] });
        c.mounts!.push({ destination: '/conf/outer/inner', type: 'bind', source: src, options: ['rbind'] });
      }, ['--read', '/conf/outer/inner/f']);
      const outer = mustMount(p, '/conf/outer');
      const inner = mustMount(p, '/conf/outer/inner');
      checkEqual(inner.parent, outer.id, 'the inner mount sits on the outer tmpfs');
      checkEqual(checkOf(p, 'read', '/conf/outer/inner/f').content, 'inner\n', 'file through the stacked bind');
    },
  },
  {
    name: 'mounts: cgroup filesystem',
    tags: ['cgroup'],
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
      });
      const cg = p.mounts.filter((m) => m.destination === '/sys/fs/cgroup' || m.destination.startsWith('/sys/fs/cgroup/'));
      check(cg.some((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2'), 'no cgroup filesystem under /sys/fs/cgroup', { mounts: cg });
      if (ctx.host.cgroup !== 'v2') {
        check(cg.some((m) => m.fstype === 'cgroup' && m.destination === '/sys/fs/cgroup/memory'), 'no memory controller at /sys/fs/cgroup/memory', { mounts: cg });
      }
    },
  },
  {
    name: 'rootfsPropagation: private',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.linux!.rootfsPropagation = 'private'; });
      checkEqual(mustMount(p, '/').propagation, 'private', 'propagation of /');
    },
  },
  {
    name: 'rootfsPropagation: shared',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.linux!.rootfsPropagation = 'shared'; });
      checkEqual(mustMount(p, '/').propagation, 'shared', 'propagation of /');
    },
  },
  {
    name: 'rootfsPropagation: slave',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.linux!.rootfsPropagation = 'slave'; });
      // A slave of a private host mount shows no peer group, so only "not shared" is certain.
      check(mustMount(p, '/').propagation !== 'shared', 'propagation of / is shared', { mount: mountAt(p, '/') });
    },
  },
  {
    name: 'mountLabel',
    async run(ctx) {
      if (!ctx.host.selinux) skip('host has no SELinux');
      skip('SELinux mount label checks are not implemented');
    },
  },
];
