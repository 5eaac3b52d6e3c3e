/*
 * Unit tests of config.json -> helper plan for the runtime-spec 1.1/1.2 fields: recursive mount
 * attributes, idmapped mounts, tmpcopyup, ioPriority, scheduler, execCPUAffinity, the LSM fields
 * and the seccomp listener's state sync.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Spec, Process } from '../../spec/src/config';
import { buildPlan, PlanContext, cpuList, addCpuAffinity, apparmorEnabled, hasMountSetattr } from '../../shim/src/runtime/plan/build';
import { buildExecPlan } from '../../shim/src/runtime/plan/exec';
import { parseMountOptions, knownMountOptions, MOUNT_ATTR } from '../../shim/src/runtime/plan/mount-options';
import { Op } from '../../shim/src/runtime/plan/ops';
import { PlanWriter } from '../../shim/src/runtime/plan/writer';
import { parseMountinfo } from '../../shim/src/runtime/cgroup/detect';
import { planCgroup } from '../../shim/src/runtime/cgroup/manager';
import type { ContainerState } from '../../shim/src/runtime/state';

const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-plan-build-'));
process.on('exit', () => fs.rmSync(rootfs, { recursive: true, force: true }));

/** A minimal create context (no cgroup, no fifo). */
function ctx(over: Partial<PlanContext> = {}): PlanContext {
  return { mode: 'create', bundle: rootfs, rootfs, cgroup: null, preserveFds: 0, listenFds: 0, noPivot: false, hookSync: false, ...over };
}

/** A minimal spec with a process and the given extra fields. */
function spec(over: Partial<Spec> = {}, proc: Partial<Process> = {}): Spec {
  return {
    ociVersion: '1.2.0',
    root: { path: rootfs },
    process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 }, ...proc },
    linux: { namespaces: [{ type: 'mount' }] },
    ...over,
  };
}

/** The OP_MOUNT record for a destination. */
function mountRec(w: PlanWriter, dest: string): string[] {
  const r = w.argsOf(Op.MOUNT).find((a) => a[1] === dest);
  assert.ok(r, `no mount record for ${dest}`);
  return r!;
}

test('buildPlan: how the process starts: exec.fifo (create), at once with an exit report (foreground run), after a go-ahead (with a terminal)', () => {
  const created = buildPlan(spec(), ctx({ execFifo: '/run/x/exec.fifo' }));
  assert.equal(created.argsOf(Op.EXEC_FIFO), [['/run/x/exec.fifo']]);
  assert.not.ok(created.has(Op.START_SYNC) || created.has(Op.REPORT_EXIT));
  const fg = buildPlan(spec(), ctx({ mode: 'run', reportExit: true }));
  assert.ok(fg.has(Op.REPORT_EXIT));
  assert.not.ok(fg.has(Op.EXEC_FIFO) || fg.has(Op.START_SYNC), 'no fifo and no go-ahead: the init goes on after READY');
  const tty = buildPlan(spec({}, { terminal: true }), ctx({ mode: 'run', reportExit: true, startSync: true, consoleSocket: '/tmp/c.sock' }));
  assert.ok(tty.has(Op.START_SYNC) && tty.has(Op.REPORT_EXIT));
  assert.not.ok(buildPlan(spec(), ctx({ reportExit: true })).has(Op.REPORT_EXIT), 'only a helper that stays (run mode) reports');
});

test('buildPlan: cgroups made while the init is set up: each procs file says its version, CGROUPS_LATER, and the init waits for the directories (not the join) before binding them', () => {
  const hybrid = parseMountinfo([
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  ].join('\n'));
  const cgroup = planCgroup({ id: 'c1', layout: hybrid });
  const cfg = spec({ mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] }] });
  const w = buildPlan(cfg, ctx({ cgroup, cgroupsLater: true }));
  assert.equal(w.argsOf(Op.CGROUP_PROCS), [
    ['/sys/fs/cgroup/cpu/c1/cgroup.procs', '1'],
    ['/sys/fs/cgroup/memory/c1/cgroup.procs', '1'],
    ['/sys/fs/cgroup/unified/c1/cgroup.procs', '2'],
  ]);
  assert.ok(w.has(Op.CGROUPS_LATER));
  const ops = w.ops();
  const wait = ops.indexOf(Op.AWAIT_CGROUP_DIRS);
  assert.not.ok(w.has(Op.AWAIT_CGROUPS), 'a bind of the directories does not wait for the join');
  const binds = w.argsOf(Op.MOUNT).filter((a) => a[0].startsWith('/sys/fs/cgroup/')).length;
  assert.is(binds, 2, 'one bind per v1 hierarchy');
  const mounts = ops.map((op, i) => [op, i] as const).filter(([op]) => op === Op.MOUNT).map(([, i]) => i);
  assert.ok(wait > mounts[0], 'the other mounts come first');
  assert.ok(wait < mounts[1], 'the cgroup tmpfs and its binds wait for the directories');
  const direct = buildPlan(cfg, ctx({ cgroup }));
  assert.not.ok(direct.has(Op.CGROUPS_LATER), 'not unless asked (exec)');
  assert.ok(direct.has(Op.AWAIT_CGROUPS) && !direct.has(Op.AWAIT_CGROUP_DIRS), 'cgroups made first: the join is awaited');
  // pure v2: a cgroup2 filesystem from a new cgroup namespace needs the init in its cgroup first.
  const v2 = planCgroup({ id: 'c2', layout: parseMountinfo('30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n') });
  const withNs = spec({ mounts: cfg.mounts, linux: { namespaces: [{ type: 'mount' }, { type: 'cgroup' }] } });
  const v2ns = buildPlan(withNs, ctx({ cgroup: v2, cgroupsLater: true }));
  assert.ok(v2ns.has(Op.AWAIT_CGROUPS) && !v2ns.has(Op.AWAIT_CGROUP_DIRS), 'cgroup namespace: the join first');
  const v2bind = buildPlan(cfg, ctx({ cgroup: v2, cgroupsLater: true }));
  assert.ok(v2bind.has(Op.AWAIT_CGROUP_DIRS) && !v2bind.has(Op.AWAIT_CGROUPS), 'a bind of the v2 directory: the directory');
});

test('buildPlan: v1 cgroup binds get their flags from two mount_setattr calls where the kernel has it, else one remount each', () => {
  const hybrid = parseMountinfo([
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  ].join('\n'));
  const cgroup = planCgroup({ id: 'c1', layout: hybrid });
  const MS_BIND = 4096, MS_REC = 16384, base = 2 | 4 | 8;
  for (const ro of [true, false]) {
    const cfg = spec({ mounts: [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ro ? ['ro'] : [] }] });
    const w = buildPlan(cfg, ctx({ cgroup, cgroupsLater: true, mountSetattr: true }));
    const recs = w.argsOf(Op.MOUNT);
    const binds = recs.filter((a) => a[6] === 'bind');
    assert.equal(binds.map((a) => [a[1], a[3]]), [['/sys/fs/cgroup/cpu', String(MS_BIND)], ['/sys/fs/cgroup/memory', String(MS_BIND)]], 'plain binds');
    const attrs = recs.filter((a) => a[6] === 'attr').map((a) => [a[1], a[3], a[7], a[8]]);
    const all = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC | (ro ? MOUNT_ATTR.RDONLY : 0);
    const want = [['/sys/fs/cgroup', String(MS_REC), String(all), '0']];
    // The tmpfs itself stays writable: read-only comes off it alone (not recursively).
    if (ro) want.push(['/sys/fs/cgroup', '0', '0', String(MOUNT_ATTR.RDONLY)]);
    assert.equal(attrs, want);
    assert.ok(recs.indexOf(recs.find((a) => a[6] === 'attr')!) > recs.indexOf(binds[1]), 'after the binds');
    const old = buildPlan(cfg, ctx({ cgroup, cgroupsLater: true, mountSetattr: false })).argsOf(Op.MOUNT);
    assert.not.ok(old.some((a) => a[6] === 'attr'));
    assert.equal(old.filter((a) => a[6] === 'bind').map((a) => a[3]), [String(MS_BIND | base | (ro ? 1 : 0)), String(MS_BIND | base | (ro ? 1 : 0))], 'each bind remounted with its flags');
  }
  assert.ok(hasMountSetattr('5.12.0') && hasMountSetattr('6.1.0-18-amd64') && hasMountSetattr('6.18.0'));
  assert.not.ok(hasMountSetattr('5.11.22') || hasMountSetattr('5.10.0-28-amd64') || hasMountSetattr('4.19.0'));
});

test('parseMountOptions: recursive attributes go to mount_setattr, not to mount flags', () => {
  const o = parseMountOptions(['rbind', 'rro', 'rnosuid', 'rnodev', 'rnoexec']);
  assert.is(o.flags & 1, 0, 'rro is not MS_RDONLY');
  assert.is(o.recAttrSet, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC);
  assert.is(o.recAttrClr, 0);
  assert.is(o.data, '');
  const rw = parseMountOptions(['rro', 'rrw', 'rsuid']);
  assert.is(rw.recAttrSet, 0);
  assert.is(rw.recAttrClr, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID);
});

test('parseMountOptions: access-time options replace the whole atime field', () => {
  const o = parseMountOptions(['rnoatime']);
  assert.is(o.recAttrSet, MOUNT_ATTR.NOATIME);
  assert.is(o.recAttrClr, MOUNT_ATTR.ATIME_MASK);
  const r = parseMountOptions(['rstrictatime', 'rrelatime']);
  assert.is(r.recAttrSet, 0, 'relatime is 0 in MOUNT_ATTR');
  assert.is(r.recAttrClr, MOUNT_ATTR.ATIME_MASK);
});

test('parseMountOptions: idmap, ridmap and tmpcopyup are not mount data', () => {
  assert.is(parseMountOptions(['bind', 'idmap']).idmap, 'idmap');
  assert.is(parseMountOptions(['rbind', 'ridmap']).idmap, 'ridmap');
  const t = parseMountOptions(['tmpcopyup', 'mode=755']);
  assert.ok(t.tmpcopyup);
  assert.is(t.data, 'mode=755');
  const known = knownMountOptions();
  for (const n of ['rro', 'rnosymfollow', 'ratime', 'idmap', 'ridmap', 'tmpcopyup']) assert.ok(known.includes(n), n);
});

test('buildPlan: OP_MOUNT carries the recursive attributes, idmap index and tmpcopyup', () => {
  const w = buildPlan(
    spec({
      mounts: [
        { destination: '/ro', type: 'bind', source: '/tmp', options: ['rbind', 'rro'] },
        { destination: '/etc', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] },
      ],
    }),
    ctx(),
  );
  const ro = mountRec(w, '/ro');
  assert.equal(ro.slice(6), ['bind', String(MOUNT_ATTR.RDONLY), '0', '-1', '0']);
  const etc = mountRec(w, '/etc');
  assert.equal(etc.slice(6), ['fs', '0', '0', '-1', '1']);
  assert.not.ok(w.has(Op.IDMAP_MOUNT));
});

test('buildPlan: idmapped bind mounts get an OP_IDMAP_MOUNT with their own mappings', () => {
  const w = buildPlan(
    spec({
      mounts: [
        {
          destination: '/data',
          type: 'bind',
          source: '/srv',
          options: ['rbind', 'ridmap'],
          uidMappings: [{ containerID: 0, hostID: 1000, size: 10 }],
          gidMappings: [{ containerID: 0, hostID: 2000, size: 10 }],
        },
        { destination: '/more', type: 'bind', source: '/opt', options: ['bind'], uidMappings: [{ containerID: 0, hostID: 5, size: 1 }], gidMappings: [{ containerID: 0, hostID: 6, size: 1 }] },
      ],
    }),
    ctx(),
  );
  assert.equal(w.argsOf(Op.IDMAP_MOUNT), [
    ['0', '/srv', '0 1000 10\n', '0 2000 10\n', '1', '1'],
    ['1', '/opt', '0 5 1\n', '0 6 1\n', '0', '0'],
  ]);
  assert.is(mountRec(w, '/data')[9], '0');
  assert.is(mountRec(w, '/more')[9], '1');
});

test('buildPlan: idmap without mappings uses the user namespace mappings, or fails', () => {
  const maps = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
  const w = buildPlan(
    spec({
      mounts: [{ destination: '/v', type: 'bind', source: '/srv', options: ['bind', 'idmap'] }],
      linux: { namespaces: [{ type: 'mount' }, { type: 'user' }], ...maps },
    }),
    ctx(),
  );
  assert.equal(w.argsOf(Op.IDMAP_MOUNT)[0].slice(2, 4), ['0 100000 65536\n', '0 100000 65536\n']);
  assert.throws(() => buildPlan(spec({ mounts: [{ destination: '/v', type: 'bind', source: '/srv', options: ['bind', 'idmap'] }] }), ctx()), /user namespace/);
  assert.throws(
    () => buildPlan(spec({ mounts: [{ destination: '/v', type: 'tmpfs', source: 'tmpfs', options: ['idmap'], ...maps }] }), ctx()),
    /only supported for bind mounts/,
  );
  assert.throws(
    () => buildPlan(spec({ mounts: [{ destination: '/v', type: 'bind', source: '/srv', options: ['bind'], uidMappings: maps.uidMappings }] }), ctx()),
    /together/,
  );
});

test('buildPlan: tmpcopyup needs a tmpfs', () => {
  assert.throws(() => buildPlan(spec({ mounts: [{ destination: '/v', type: 'bind', source: '/srv', options: ['bind', 'tmpcopyup'] }] }), ctx()), /tmpfs/);
});

test('buildPlan: ioPriority and scheduler records, validated as runc', () => {
  const w = buildPlan(
    spec({}, { ioPriority: { class: 'IOPRIO_CLASS_IDLE', priority: 7 }, scheduler: { policy: 'SCHED_BATCH', nice: 5, flags: ['SCHED_FLAG_RESET_ON_FORK'] } }),
    ctx(),
  );
  assert.equal(w.argsOf(Op.IOPRIO), [['3', '7']]);
  assert.equal(w.argsOf(Op.SCHEDULER), [['3', '5', '0', '1', '0', '0', '0']]);
  const dl = buildPlan(spec({}, { scheduler: { policy: 'SCHED_DEADLINE', runtime: 10, deadline: 20, period: 30 } }), ctx());
  assert.equal(dl.argsOf(Op.SCHEDULER), [['6', '0', '0', '0', '10', '20', '30']]);
  assert.throws(() => buildPlan(spec({}, { ioPriority: { class: 'IOPRIO_CLASS_BE', priority: 8 } }), ctx()), /0\.\.7/);
  assert.throws(() => buildPlan(spec({}, { scheduler: { policy: 'SCHED_OTHER', priority: 3 } }), ctx()), /SCHED_FIFO or SCHED_RR/);
  assert.throws(() => buildPlan(spec({}, { scheduler: { policy: 'SCHED_OTHER', runtime: 3 } }), ctx()), /SCHED_DEADLINE/);
  assert.throws(() => buildPlan(spec({}, { scheduler: { policy: 'SCHED_OTHER', nice: 20 } }), ctx()), /nice/);
  assert.throws(() => buildPlan(spec({}, { scheduler: { policy: 'SCHED_OTHER', flags: ['SCHED_FLAG_BOGUS'] } }), ctx()), /unknown/);
});

test('buildPlan: selinux fields are ignored without SELinux; apparmor fails without AppArmor', () => {
  const selinux = fs.existsSync('/sys/fs/selinux/enforce');
  const w = buildPlan(
    spec(
      { linux: { namespaces: [{ type: 'mount' }], mountLabel: 'system_u:object_r:container_file_t:s0' }, mounts: [{ destination: '/t', type: 'tmpfs', source: 'tmpfs' }] },
      { selinuxLabel: 'system_u:system_r:container_t:s0' },
    ),
    ctx(),
  );
  assert.is(w.has(Op.SELINUX_LABEL), selinux);
  assert.is(mountRec(w, '/t')[5].includes('context='), selinux);
  if (apparmorEnabled()) {
    assert.equal(buildPlan(spec({}, { apparmorProfile: 'p' }), ctx()).argsOf(Op.APPARMOR), [['p']]);
  } else {
    assert.throws(() => buildPlan(spec({}, { apparmorProfile: 'p' }), ctx()), /apparmor is not enabled/);
  }
});

test('buildPlan: a seccomp listener makes the init ask for the state (HOOK_SYNC)', () => {
  const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
  const w = buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }], seccomp } as Spec['linux'] }), ctx());
  assert.ok(w.has(Op.HOOK_SYNC));
  assert.equal(w.argsOf(Op.SECCOMP_LISTENER), [['/run/l.sock', '']]);
  assert.not.ok(buildPlan(spec(), ctx()).has(Op.HOOK_SYNC));
});

test('cpuList / addCpuAffinity: ranges expand; only initial resets final to every cpu', () => {
  assert.is(cpuList('0-3,7', 'initial'), '0,1,2,3,7');
  assert.throws(() => cpuList('3-1', 'final'), /invalid cpu range/);
  assert.throws(() => cpuList('a', 'final'), /invalid cpu list/);
  const w = new PlanWriter();
  addCpuAffinity(w, { args: ['x'], cwd: '/', execCPUAffinity: { initial: '1' } });
  addCpuAffinity(w, { args: ['x'], cwd: '/', execCPUAffinity: { final: '0-1' } });
  addCpuAffinity(w, { args: ['x'], cwd: '/' });
  assert.equal(w.argsOf(Op.CPU_AFFINITY), [['1', '*'], ['', '0,1']]);
});

test('buildPlan ignores execCPUAffinity (not for the init); buildExecPlan applies it and embeds the state for a listener', () => {
  const proc: Process = { args: ['sh'], cwd: '/', execCPUAffinity: { initial: '0', final: '1' } };
  assert.not.ok(buildPlan(spec({}, proc), ctx()).has(Op.CPU_AFFINITY));
  const config = spec({
    linux: { namespaces: [{ type: 'mount' }], seccomp: { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/l', syscalls: [] } } as Spec['linux'],
  });
  const s = { ociVersion: '1.2.0', id: 'c1', pid: 42, bundle: '/b', rootfs, annotations: { k: 'v' }, config } as unknown as ContainerState;
  const w = buildExecPlan(s, proc, { mode: 'create', procsFiles: [], preserveFds: 0 });
  assert.equal(w.argsOf(Op.CPU_AFFINITY), [['0', '1']]);
  const st = JSON.parse(w.argsOf(Op.STATE_JSON)[0][0]);
  assert.equal(st, { ociVersion: '1.2.0', id: 'c1', status: 'running', pid: 42, bundle: '/b', annotations: { k: 'v' } });
});

test.run();
