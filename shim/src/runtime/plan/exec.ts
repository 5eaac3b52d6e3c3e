import type { Process } from '../../../../spec/src/config';
import type { ContainerState } from '../state';
import { Op } from './ops';
import { PlanWriter } from './writer';
import { addProcess, addRlimits, addCpuAffinity } from './build';
import { encodeSeccomp } from './seccomp';

/** OCI namespace type -> the name under /proc/<pid>/ns. */
const NS_FILE: Record<string, string> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

/** The runtime-spec state of a running container, as given to a seccomp listener on exec. */
export function execState(s: ContainerState): Record<string, unknown> {
  return { ociVersion: s.ociVersion, id: s.id, status: 'running', pid: s.pid, bundle: s.bundle, annotations: s.annotations ?? {} };
}

/** What an exec plan needs besides the process. */
export interface ExecContext {
  mode: 'create' | 'run';
  procsFiles: string[];
  consoleSocket?: string;
  preserveFds: number;
}

/**
 * The plan of `exec`: join every namespace of the container's init (the user namespace first; the
 * cgroup namespace only after joining the cgroup, so it is rooted where the init's is), enter its
 * cgroup, apply the container's seccomp profile and the process's user, capabilities and limits.
 */
export function buildExecPlan(s: ContainerState, proc: Process, ctx: ExecContext): PlanWriter {
  const w = new PlanWriter();
  w.add(Op.MODE, ctx.mode);
  let cgroupNs = false;
  for (const ns of s.config.linux?.namespaces ?? []) {
    if (ns.type === 'cgroup') {
      cgroupNs = true;
      continue;
    }
    const f = NS_FILE[ns.type];
    if (f) w.add(Op.JOIN_NS, ns.type, `/proc/${s.pid}/ns/${f}`);
  }
  w.add(Op.CLONE_FLAGS, 0);
  addCpuAffinity(w, proc);
  for (const f of ctx.procsFiles) w.add(Op.CGROUP_PROCS, f);
  if (proc.oomScoreAdj !== undefined) w.add(Op.OOM_SCORE_ADJ, proc.oomScoreAdj);
  addRlimits(w, proc);
  if (cgroupNs) w.add(Op.JOIN_CGROUPNS, `/proc/${s.pid}/ns/cgroup`);
  if (ctx.consoleSocket && proc.terminal) w.add(Op.CONSOLE_SOCKET, ctx.consoleSocket, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0);
  const seccomp = s.config.linux?.seccomp;
  if (seccomp) encodeSeccomp(w, seccomp);
  // The seccomp listener receives the container's state with the notify fd.
  if (seccomp?.listenerPath) w.add(Op.STATE_JSON, JSON.stringify(execState(s)));
  addProcess(w, proc, { rootfs: s.rootfs, passFds: ctx.preserveFds, listenFds: 0 });
  return w;
}
