/**
 * Device nodes: the default devices and /dev symlinks of config-linux.md, linux.devices
 * (type, major, minor, fileMode, uid, gid), and the device cgroup (linux.resources.devices)
 * checked by opening a node from inside.
 */
import { Case, checkOf } from '../context';
import { check, checkEqual } from '../tap';

const EPERM = 1;

/** Device cases. */
export const deviceCases: Case[] = [
  {
    name: 'devices: default devices null zero full random urandom tty',
    async run(ctx) {
      const p = await ctx.probe();
      const want: Record<string, [number, number]> = { null: [1, 3], zero: [1, 5], full: [1, 7], random: [1, 8], urandom: [1, 9], tty: [5, 0] };
      for (const [n, [maj, min]] of Object.entries(want)) {
        const d = p.dev[n];
        check(d && !d.errno, `/dev/${n} missing`, { dev: Object.keys(p.dev) });
        checkEqual([d.type, d.major, d.minor], ['c', maj, min], `/dev/${n} type, major, minor`);
        checkEqual(d.mode, 0o666, `/dev/${n} mode`);
      }
    },
  },
  {
    name: 'devices: /dev/fd, stdin, stdout, stderr and ptmx links',
    async run(ctx) {
      const p = await ctx.probe();
      const want: Record<string, string> = { fd: '/proc/self/fd', stdin: '/proc/self/fd/0', stdout: '/proc/self/fd/1', stderr: '/proc/self/fd/2' };
      for (const [n, t] of Object.entries(want)) {
        checkEqual([p.dev[n]?.type, p.dev[n]?.target], ['l', t], `/dev/${n} symlink`);
      }
      const ptmx = p.dev.ptmx;
      const ok = ptmx && ((ptmx.type === 'l' && ['pts/ptmx', '/dev/pts/ptmx'].includes(ptmx.target)) ||
        (ptmx.type === 'c' && ptmx.major === 5 && ptmx.minor === 2));
      check(ok, '/dev/ptmx is neither a link to pts/ptmx nor the devpts ptmx', { ptmx });
    },
  },
  {
    name: 'devices: linux.devices char, block and fifo nodes',
    async run(ctx) {
      const devs = [
        { path: '/dev/conf-char', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 1000, gid: 1001 },
        { path: '/dev/conf-blk', type: 'b', major: 7, minor: 0, fileMode: 0o600, uid: 0, gid: 6 },
        { path: '/dev/conf-fifo', type: 'p', fileMode: 0o620, uid: 0, gid: 0 },
      ];
      const p = await ctx.probe((c) => {
        c.linux!.devices = devs;
        // Allow them in the device cgroup in case the runtime defaults to deny-all.
        c.linux!.resources = { devices: [{ allow: true, access: 'rwm' }] };
      }, devs.flatMap((d) => ['--stat', d.path]));
      for (const d of devs) {
        const s = checkOf(p, 'stat', d.path);
        check(!s.errno, `${d.path} missing`, { errno: s.errno });
        checkEqual(
          { type: s.type, major: s.major, minor: s.minor, mode: s.mode, uid: s.uid, gid: s.gid },
          { type: d.type, major: d.major, minor: d.minor, mode: d.fileMode, uid: d.uid, gid: d.gid },
          `${d.path} node`);
      }
    },
  },
  {
    name: 'devices: linux.devices in a new subdirectory',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.devices = [{ path: '/dev/conf/sub/null2', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }];
      }, ['--stat', '/dev/conf/sub/null2']);
      const s = checkOf(p, 'stat', '/dev/conf/sub/null2');
      checkEqual([s.type, s.major, s.minor], ['c', 1, 3], 'node type, major, minor');
    },
  },
  {
    name: 'devices: device cgroup denies a node without an allow rule',
    tags: ['cgroup'],
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.devices = [{ path: '/dev/conf-kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o666, uid: 0, gid: 0 }];
        c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
      }, ['--check-write', '/dev/conf-kmsg', '--check-write', '/dev/null']);
      checkEqual(checkOf(p, 'check-write', '/dev/conf-kmsg').errno, EPERM, 'errno opening c 1:11 for writing');
      checkEqual(checkOf(p, 'check-write', '/dev/null').ok, true, 'default device /dev/null still usable');
    },
  },
  {
    name: 'devices: device cgroup allow rule',
    tags: ['cgroup'],
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.devices = [{ path: '/dev/conf-kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o666, uid: 0, gid: 0 }];
        c.linux!.resources = {
          devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'w' }],
        };
      }, ['--check-write', '/dev/conf-kmsg', '--check-read', '/dev/conf-kmsg']);
      checkEqual(checkOf(p, 'check-write', '/dev/conf-kmsg').ok, true, 'opening c 1:11 for writing (allowed "w")');
      checkEqual(checkOf(p, 'check-read', '/dev/conf-kmsg').errno, EPERM, 'opening c 1:11 for reading (not allowed)');
    },
  },
];
