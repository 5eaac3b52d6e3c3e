/*
 * The throw-away pure cgroup v2 VM (/work/shared/vm/run-in-vm.sh, or $RUN_IN_VM) for the tests
 * that need a real cgroup v2 kernel or a working CRIU: whether it can run here, and running a
 * command that boots it.
 */
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import { repoRoot } from '../../shim/src/native';

/** The script that boots the VM. */
export const VM_SCRIPT = process.env.RUN_IN_VM ?? '/work/shared/vm/run-in-vm.sh';

/** Why the VM cannot run here (SHOAL_SKIP_VM=1, no script, no qemu), or undefined when it can. */
export function vmSkipReason(): string | undefined {
  if (process.env.SHOAL_SKIP_VM === '1') return 'SHOAL_SKIP_VM=1';
  if (!fs.existsSync(VM_SCRIPT)) return `${VM_SCRIPT} not found`;
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0) return 'qemu-system-x86_64 is not installed';
  return undefined;
}

/** What a VM run gave: its exit status (125: the VM could not start) and its whole output. */
export interface VmRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Runs `file args` from the repository root (a command that boots the VM), within timeoutMs. */
export function runVm(file: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): VmRun {
  const r = spawnSync(file, args, {
    cwd: repoRoot(),
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, RUN_IN_VM: VM_SCRIPT, ...env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, signal: r.signal, out: `${r.stdout}\n${r.stderr}` };
}
