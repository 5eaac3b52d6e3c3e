/**
 * linux.namespaces and the user-namespace id mappings. The probe's /proc/self/ns/* inode
 * numbers are compared with the runner's own (new vs shared) and with those of another
 * container's process (joined by path).
 */
import * as fs from 'fs';
import { Case } from '../context';
import { Config } from '../bundle';
import { check, checkEqual, skip } from '../tap';

/** spec namespace type -> /proc/self/ns entry name. */
const NS_FILE: Record<string, string> = {
  pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mnt', cgroup: 'cgroup', user: 'user', time: 'time',
};

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function withUserns(c: Config): void {
  c.linux!.namespaces!.push({ type: 'user' });
  c.linux!.uidMappings = MAP;
  c.linux!.gidMappings = MAP;
}

function nsInode(pid: number, name: string): number {
  return fs.statSync(`/proc/${pid}/ns/${name}`).ino;
}

const norm = (lines: string[] | null) => (lines ?? []).map((l) => l.trim().split(/\s+/).join(' '));

function newNsCase(type: string): Case {
  return {
    name: `namespaces: new ${type}`,
    tags: type === 'cgroup' ? ['cgroup'] : [],
    async run(ctx) {
      const file = NS_FILE[type];
      const p = await ctx.probe((c) => {
        if (type === 'user') withUserns(c);
        else if (!c.linux!.namespaces!.some((n) => n.type === type)) c.linux!.namespaces!.push({ type });
        if (type === 'time') c.ociVersion = '1.2.0';
      });
      check(p.namespaces[file] !== undefined, `probe cannot see /proc/self/ns/${file}`);
      check(p.namespaces[file] !== ctx.host.ns[file], `${type} namespace is the runner's`, { inode: p.namespaces[file] });
      if (type === 'pid') checkEqual(p.pid, 1, 'the process is pid 1 of its pid namespace');
    },
  };
}

/** Namespace cases. */
export const namespaceCases: Case[] = [
  ...['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup', 'user'].map(newNsCase),
  {
    name: 'namespaces: new time (spec 1.2)',
    async run(ctx) {
      if (!ctx.host.timeNs) skip('kernel has no time namespaces');
      await newNsCase('time').run(ctx);
    },
  },
  {
    name: 'namespaces: types not listed are shared with the runtime (network, ipc, uts, cgroup)',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        c.linux!.namespaces = [{ type: 'pid' }, { type: 'mount' }];
        delete c.hostname;
      });
      for (const f of ['net', 'ipc', 'uts', 'cgroup']) checkEqual(p.namespaces[f], ctx.host.ns[f], `${f} namespace inode`);
    },
  },
  {
    name: 'namespaces: join network, ipc and uts of another container by path',
    async run(ctx) {
      const first = await ctx.createSleeper((c) => { c.hostname = 'first-host'; });
      const p = await ctx.probe((c) => {
        delete c.hostname;
        c.linux!.namespaces = [
          { type: 'pid' }, { type: 'mount' },
          { type: 'network', path: `/proc/${first.pid}/ns/net` },
          { type: 'ipc', path: `/proc/${first.pid}/ns/ipc` },
          { type: 'uts', path: `/proc/${first.pid}/ns/uts` },
        ];
      });
      for (const f of ['net', 'ipc', 'uts']) checkEqual(p.namespaces[f], nsInode(first.pid, f), `${f} namespace inode equals the first container's`);
      checkEqual(p.hostname, 'first-host', 'hostname seen through the joined uts namespace');
      check(p.namespaces.pid !== nsInode(first.pid, 'pid'), 'pid namespace was joined although not asked');
    },
  },
  {
    name: 'namespaces: join a pid namespace by path',
    async run(ctx) {
      const first = await ctx.createSleeper();
      const p = await ctx.probe((c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'pid');
        c.linux!.namespaces!.push({ type: 'pid', path: `/proc/${first.pid}/ns/pid` });
      });
      checkEqual(p.namespaces.pid, nsInode(first.pid, 'pid'), 'pid namespace inode');
      check(p.pid !== 1, 'the joining process is pid 1');
    },
  },
  {
    name: 'namespaces: user namespace uid/gid mappings',
    async run(ctx) {
      const p = await ctx.probe(withUserns);
      checkEqual(norm(p.uidMap), ['0 100000 65536'], '/proc/self/uid_map');
      checkEqual(norm(p.gidMap), ['0 100000 65536'], '/proc/self/gid_map');
      checkEqual([p.uid, p.gid], [0, 0], 'uid and gid inside');
      check(p.namespaces.user !== ctx.host.ns.user, 'user namespace is the runner\'s');
    },
  },
  {
    name: 'namespaces: user namespace with a non-root process',
    async run(ctx) {
      const p = await ctx.probe((c) => {
        withUserns(c);
        c.process!.user = { uid: 1000, gid: 1000 };
      });
      checkEqual([p.uid, p.gid], [1000, 1000], 'uid and gid inside');
      check(/^\s*1000\s/.test(p.status.Uid ?? ''), 'status Uid', { Uid: p.status.Uid });
    },
  },
];
