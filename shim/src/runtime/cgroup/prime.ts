/*
 * Moving a process into a cgroup (a write to cgroup.procs) takes the kernel's global
 * cgroup_threadgroup_rwsem for writing. When no migration happened in the last 10-20 ms, that
 * waits for an RCU grace period first: 8-14 ms on this 2-core host, the largest single cost of
 * creating a container, and the init's migration sits on the critical path of every create and
 * exec. A no-op migration of this process into its own cgroup, started off the main thread as
 * soon as a create or exec begins, pays that wait while the runtime validates the config and
 * creates the cgroup; the helper's real migration then finds the lock warm.
 */
import * as path from 'path';
import { native } from '../../native';
import { detectCgroups, ownCgroups } from './detect';

/** Start the no-op self-migration (best effort: any error only means no head start). */
export function primeCgroupMigration(): void {
  try {
    const layout = detectCgroups();
    const h = layout.unified ?? layout.hierarchies[0];
    const own = h && ownCgroups().get(h.key);
    if (!h || own === undefined) return;
    // "0" is the writing process: this one, already in that cgroup (the kernel skips the move).
    // On a thread of its own: Node's threadpool would first wait for its four workers to start.
    native().writeFileDetached(path.join(h.mountpoint, own, 'cgroup.procs'), '0');
  } catch {
    // no cgroup filesystem visible: nothing to warm
  }
}
