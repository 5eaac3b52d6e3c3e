/**
 * linux.seccomp, linux.sysctl, linux.maskedPaths and linux.readonlyPaths, checked from inside
 * with the probe (errno of a filtered syscall, Seccomp mode in /proc/self/status, sysctl values,
 * reads and opens of masked and read-only paths).
 */
import { Case, checkOf, mountAt } from '../context';
import { check, checkEqual } from '../tap';

const EPERM = 1;
const EROFS = 30;
const EOPNOTSUPP = 95;
const ARCHES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

function denyMkdir(errnoRet?: number): Record<string, any> {
  const rule: Record<string, any> = { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' };
  if (errnoRet !== undefined) rule.errnoRet = errnoRet;
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: ARCHES, syscalls: [rule] };
}

/** Security cases. */
export const securityCases: Case[] = [
  {
    name: 'seccomp: SCMP_ACT_ERRNO defaults to EPERM, filter mode 2',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.linux!.seccomp = denyMkdir(); }, ['--mkdir', '/tmp/conf-dir']);
      checkEqual(checkOf(p, 'mkdir', '/tmp/conf-dir').errno, EPERM, 'errno of the denied mkdir');
      checkEqual(p.status.Seccomp, '2', 'Seccomp mode in /proc/self/status');
    },
  },
  {
    name: 'seccomp: errnoRet',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.linux!.seccomp = denyMkdir(EOPNOTSUPP); }, ['--mkdir', '/tmp/conf-dir']);
      checkEqual(checkOf(p, 'mkdir', '/tmp/conf-dir').errno, EOPNOTSUPP, 'errno of the denied mkdir');
    },
  },
  {
    name: 'seccomp: argument condition',
    async run(ctx) {
      // personality(0xffffffff) only queries; deny exactly that argument value.
      const p = await ctx.probe((c) => {
        c.linux!.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW', architectures: ARCHES,
          syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 4294967295, op: 'SCMP_CMP_EQ' }] }],
        };
      }, ['--mkdir', '/tmp/conf-dir']);
      checkEqual(p.personality, -1, 'personality(0xffffffff) is denied');
      checkEqual(checkOf(p, 'mkdir', '/tmp/conf-dir').ok, true, 'other syscalls still allowed');
    },
  },
  {
    name: 'seccomp: none without linux.seccomp',
    async run(ctx) {
      const p = await ctx.probe();
      checkEqual(p.status.Seccomp, '0', 'Seccomp mode');
    },
  },
  {
    name: 'sysctl: namespaced net and ipc sysctls',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '12345678' };
      }, ['--read', '/proc/sys/net/ipv4/ip_forward', '--read', '/proc/sys/kernel/shmmax']);
      checkEqual(checkOf(p, 'read', '/proc/sys/net/ipv4/ip_forward').content, '1\n', 'net.ipv4.ip_forward');
      checkEqual(checkOf(p, 'read', '/proc/sys/kernel/shmmax').content, '12345678\n', 'kernel.shmmax');
    },
  },
  {
    name: 'maskedPaths: files read empty, directories list empty, missing paths ignored',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.maskedPaths = ['/proc/kcore', '/sys/firmware', '/proc/conf-does-not-exist'];
      }, ['--check-read', '/proc/kcore', '--ls', '/sys/firmware']);
      const kc = checkOf(p, 'check-read', '/proc/kcore');
      check(!kc.ok || kc.readBytes === 0, '/proc/kcore is readable and not empty', { result: kc });
      checkEqual(checkOf(p, 'ls', '/sys/firmware').entries, [], 'entries of masked /sys/firmware');
    },
  },
  {
    name: 'readonlyPaths: writes fail with EROFS',
    async run(ctx) {
      // /conf-ro is a tmpfs from `mounts`: readonlyPaths apply after the configured mounts.
      const p = await ctx.probe((c) => {
        c.mounts!.push({ destination: '/conf-ro', type: 'tmpfs', source: 'tmpfs', options: ['size=64k'] });
        c.linux!.readonlyPaths = ['/proc/sys', '/conf-ro', '/proc/conf-does-not-exist'];
      }, ['--check-write', '/proc/sys/kernel/domainname', '--write-file', '/conf-ro/x', '--check-read', '/proc/sys/kernel/ostype']);
      checkEqual(checkOf(p, 'check-write', '/proc/sys/kernel/domainname').errno, EROFS, 'open /proc/sys/kernel/domainname for writing');
      checkEqual(checkOf(p, 'write-file', '/conf-ro/x').errno, EROFS, 'create a file in /conf-ro');
      checkEqual(checkOf(p, 'check-read', '/proc/sys/kernel/ostype').ok, true, 'reading stays possible');
      for (const d of ['/proc/sys', '/conf-ro']) {
        const m = mountAt(p, d);
        check(m && m.options.split(',').includes('ro'), `${d} is not a read-only mount`, { mount: m });
      }
    },
  },
  {
    name: 'readonlyPaths: control, writable without it',
    async run(ctx) {
      const p = await ctx.probe(() => {}, ['--check-write', '/proc/sys/kernel/domainname']);
      checkEqual(checkOf(p, 'check-write', '/proc/sys/kernel/domainname').ok, true, 'open /proc/sys/kernel/domainname for writing');
    },
  },
];
