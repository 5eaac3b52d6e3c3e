import * as path from 'path';
import type { Process } from '../../../spec/src/config';
import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { runHelper, HelperProcess, StdioEntry } from './helper';
import { buildExecPlan } from './plan/exec';
import { StateStore } from './state';
import { computeStatus, can } from './status';
import { writePidFile } from './proc';

/** What `exec` takes. */
export interface ExecOptions {
  store: StateStore;
  id: string;
  process: Process;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  /** The process's stdio (default: this process's own). */
  stdio?: [StdioEntry, StdioEntry, StdioEntry];
}

/**
 * Start a new process inside a running container. Detached, the helper exits once the process
 * runs (it is reparented to the caller's subreaper); otherwise the returned helper exits with the
 * process's status.
 */
export async function execProcess(o: ExecOptions): Promise<{ pid: number; helper: HelperProcess }> {
  const s = o.store.load(o.id);
  const status = computeStatus(s, o.store.fifo(o.id));
  if (status === 'paused') throw new ShoalError('INVALID_STATE', 'cannot exec in a paused container');
  if (!can.exec(status)) throw new ShoalError('INVALID_STATE', `cannot exec in a ${status} container`);
  if (!o.process.args?.length) throw new ShoalError('INVALID_ARGUMENT', 'process args cannot be empty');
  if (o.process.terminal && !o.consoleSocket && o.detach) throw new ShoalError('INVALID_ARGUMENT', 'cannot allocate tty if shoal will detach without setting console socket');
  const procsFiles = s.cgroup ? loadCgroup(s.cgroup).procsFiles() : [];
  const plan = buildExecPlan(s, o.process, {
    mode: o.detach ? 'create' : 'run',
    procsFiles,
    consoleSocket: o.consoleSocket ? path.resolve(o.consoleSocket) : undefined,
    preserveFds: o.preserveFds ?? 0,
  });
  let pid = 0;
  const helper = await runHelper(plan, { passFds: o.preserveFds ?? 0, cwd: '/', stdio: o.stdio, events: { onPid: (p) => (pid = p) } });
  if (o.pidFile) writePidFile(o.pidFile, pid);
  return { pid, helper };
}
