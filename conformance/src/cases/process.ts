/**
 * config.json `process.*` (and hostname/domainname): what the probe sees as its argv, env,
 * cwd, credentials, umask, capability sets, rlimits, no_new_privs, oom_score_adj, scheduling
 * and I/O priority, plus the LSM labels (skipped when the host has no such LSM).
 */
import * as fs from 'fs';
import { Case, capMask } from '../context';
import { check, checkEqual, skip } from '../tap';

const hex = (m: bigint) => m.toString(16).padStart(16, '0');

/** Process cases. */
export const processCases: Case[] = [
  {
    name: 'process: args are passed verbatim',
    async run(ctx) {
      const args = ['/probe', '--stat', '/dir with space/"quoted"', '--readlink', 'ünïcode-\\-$HOME'];
      const p = await ctx.probe((c) => { c.process!.args = args; });
      checkEqual(p.args, args, 'argv seen by the process');
    },
  },
  {
    name: 'process: env is set exactly as configured',
    async run(ctx) {
      const env = ['PATH=/bin:/sbin', 'FOO=bar', 'EMPTY=', 'WITH_EQ=a=b=c', 'SPACE=x y'];
      const p = await ctx.probe((c) => { c.process!.env = env; });
      for (const e of env) check(p.env.includes(e), `env lacks ${e}`, { env: p.env });
    },
  },
  {
    name: 'process: cwd',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.cwd = '/tmp'; });
      checkEqual(p.cwd, '/tmp', 'getcwd()');
    },
  },
  {
    name: 'process: user uid, gid and additionalGids',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.user = { uid: 1000, gid: 1001, additionalGids: [10, 20] }; });
      checkEqual([p.uid, p.euid, p.gid, p.egid], [1000, 1000, 1001, 1001], 'uid, euid, gid, egid');
      const groups = (p.groups as number[]).filter((g) => g !== 1001).sort((a, b) => a - b);
      checkEqual(groups, [10, 20], 'supplementary groups (besides the primary gid)');
    },
  },
  {
    name: 'process: user umask',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.user.umask = 0o027; });
      checkEqual(p.umask, 0o027, 'umask');
    },
  },
  {
    name: 'process: capabilities of a root process (all five sets)',
    async run(ctx) {
      const caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT'];
      const p = await ctx.probe((c) => {
        c.process!.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
      });
      const m = hex(capMask(caps));
      checkEqual(
        [p.status.CapBnd, p.status.CapEff, p.status.CapPrm, p.status.CapInh, p.status.CapAmb],
        [m, m, m, m, m], 'CapBnd, CapEff, CapPrm, CapInh, CapAmb');
    },
  },
  {
    name: 'process: capabilities of a non-root process via ambient',
    async run(ctx) {
      const both = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
      const amb = ['CAP_NET_BIND_SERVICE'];
      const p = await ctx.probe((c) => {
        c.process!.user = { uid: 1000, gid: 1000 };
        c.process!.capabilities = { bounding: both, effective: both, permitted: both, inheritable: both, ambient: amb };
      });
      checkEqual(
        { bnd: p.status.CapBnd, inh: p.status.CapInh, amb: p.status.CapAmb, prm: p.status.CapPrm, eff: p.status.CapEff },
        { bnd: hex(capMask(both)), inh: hex(capMask(both)), amb: hex(capMask(amb)), prm: hex(capMask(amb)), eff: hex(capMask(amb)) },
        'capability sets after execve as uid 1000');
    },
  },
  {
    name: 'process: empty capability sets',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.process!.capabilities = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
      });
      const z = hex(0n);
      checkEqual([p.status.CapBnd, p.status.CapEff, p.status.CapPrm, p.status.CapInh, p.status.CapAmb], [z, z, z, z, z], 'all sets empty');
    },
  },
  {
    name: 'process: rlimits',
    async run(ctx) {
      const rl = [
        { type: 'RLIMIT_NOFILE', soft: 512, hard: 768 },
        { type: 'RLIMIT_CORE', soft: 1024, hard: 4096 },
        { type: 'RLIMIT_CPU', soft: 100, hard: 200 },
        { type: 'RLIMIT_MSGQUEUE', soft: 1000, hard: 2000 },
      ];
      const p = await ctx.probe((c) => { c.process!.rlimits = rl; });
      for (const r of rl) checkEqual(p.rlimits[r.type], [r.soft, r.hard], `${r.type} [soft, hard]`);
    },
  },
  {
    name: 'process: noNewPrivileges true',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.noNewPrivileges = true; });
      checkEqual(p.status.NoNewPrivs, '1', 'NoNewPrivs');
    },
  },
  {
    name: 'process: noNewPrivileges false',
    async run(ctx) {
      if (ctx.host.noNewPrivs) skip('the runner itself runs with no_new_privs set');
      const p = await ctx.probe((c) => { c.process!.noNewPrivileges = false; });
      checkEqual(p.status.NoNewPrivs, '0', 'NoNewPrivs');
    },
  },
  {
    name: 'process: oomScoreAdj',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.oomScoreAdj = 500; });
      checkEqual(p.oomScoreAdj, '500', '/proc/self/oom_score_adj');
    },
  },
  {
    name: 'process: terminal false leaves stdio as given (no tty)',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.process!.terminal = false; });
      checkEqual(p.tty, { 0: false, 1: false, 2: false }, 'isatty(0..2)');
    },
  },
  {
    name: 'process: hostname',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.hostname = 'conf-host-1'; });
      checkEqual(p.hostname, 'conf-host-1', 'uname nodename');
    },
  },
  {
    name: 'process: domainname',
    async run(ctx) {
      const p = await ctx.probe((c) => { c.domainname = 'conf.example'; });
      checkEqual(p.domainname, 'conf.example', 'uname domainname');
    },
  },
  {
    name: 'process: apparmorProfile',
    async run(ctx) {
      if (!ctx.host.apparmor) skip('host has no AppArmor');
      skip('AppArmor profile checks are not implemented');
    },
  },
  {
    name: 'process: selinuxLabel',
    async run(ctx) {
      if (!ctx.host.selinux) skip('host has no SELinux');
      skip('SELinux label checks are not implemented');
    },
  },
  {
    name: 'process: ioPriority (spec 1.2)',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.ociVersion = '1.2.0';
        c.process!.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 5 };
      });
      checkEqual([p.ioprioClass, p.ioprioLevel], [2, 5], 'ioprio_get class and level');
    },
  },
  {
    name: 'process: scheduler SCHED_BATCH with nice (spec 1.2)',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.ociVersion = '1.2.0';
        c.process!.scheduler = { policy: 'SCHED_BATCH', nice: 5 };
      });
      checkEqual([p.schedPolicy, p.nice], [3, 5], 'sched_getscheduler and nice');
    },
  },
  {
    // config.md: execCPUAffinity "is not applicable to the container's init process"; `exec`
    // (the runc CLI both runtimes implement) runs a process of config.process that it applies to.
    name: 'process: execCPUAffinity applies to exec, not to the init (spec 1.2)',
    async run(ctx) {
      const p0 = await ctx.probe();
      const all = p0.cpuAffinity as number[];
      if (all.length < 2) skip('host has fewer than 2 CPUs');
      const s = await ctx.createSleeper((c) => {
        c.ociVersion = '1.2.0';
        c.process!.execCPUAffinity = { initial: '0', final: '1' };
      });
      const st = await ctx.rt.start(s.id);
      check(st.code === 0, `start exited ${st.code}`, { stderr: st.stderr });
      const r = await ctx.rt.exec(['exec', s.id, 'grep', 'Cpus_allowed_list', '/proc/self/status']);
      check(r.code === 0, `exec exited ${r.code}`, { stderr: r.stderr });
      checkEqual(r.stdout.trim().split(/\s+/).pop(), '1', 'Cpus_allowed_list of the exec process');
      const list = fs.readFileSync(`/proc/${s.pid}/status`, 'utf8').match(/Cpus_allowed_list:\s*(\S+)/)?.[1] ?? '';
      const init = list.split(',').flatMap((r) => {
        const [lo, hi = lo] = r.split('-').map(Number);
        return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
      });
      checkEqual(init, all, 'the init keeps the cpus it was started with');
    },
  },
  {
    name: 'process: linux.personality LINUX32 (spec 1.2)',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.ociVersion = '1.2.0';
        c.linux!.personality = { domain: 'LINUX32' };
      });
      checkEqual(p.personality & 0xff, 8, 'personality(0xffffffff) & PER_MASK');
    },
  },
];
