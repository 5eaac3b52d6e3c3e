/*
 * cgroup v1 and hybrid hosts. Like runc, the container joins every mounted v1 hierarchy
 * (named ones such as name=systemd included) and, on hybrid hosts, the unified cgroup2
 * hierarchy as well. Resources go to the v1 controllers; freezing uses the v1 freezer;
 * destroy uses cgroup.kill of the unified hierarchy when there is one, then freeze-kill-thaw.
 */
import * as path from 'path';
import type { LinuxResources } from '../../../../spec/src/config';
import { ShoalError } from '../errors';
import { BaseCgroup, applyWrites, killPids, type CgroupDir } from './handle';
import { CONTROLLERS } from './controllers/index';
import { V1_CPUSET_INHERIT } from './controllers/cpuset';
import { isFrozenV1, setFrozenV1, V1_STATE } from './controllers/freezer';
import { readIfExists, sleep, writeCgroupFile } from './fsutil';

/** A container cgroup on a v1 or hybrid host. */
export class V1Cgroup extends BaseCgroup {
  /** The entry of the v1 hierarchy that holds `controller`, if mounted. */
  private entryFor(controller: string): CgroupDir | undefined {
    return this.entries.find((e) => e.hierarchy.version === 1 && e.hierarchy.controllers.includes(controller));
  }

  /** The unified (cgroup2) entry on hybrid hosts. */
  private unifiedEntry(): CgroupDir | undefined {
    return this.entries.find((e) => e.hierarchy.version === 2);
  }

  /**
   * Apply resources to the v1 controllers. A controller that is asked for but not mounted is an
   * error; `unified` settings need cgroup v2.
   */
  apply(resources: LinuxResources): void {
    if (resources.unified && Object.keys(resources.unified).length > 0) {
      throw new ShoalError('CGROUP', 'linux.resources.unified requires a cgroup v2 host');
    }
    for (const c of CONTROLLERS) {
      if (!c.isSet(resources)) continue;
      const e = this.entryFor(c.name);
      if (!e) throw new ShoalError('CGROUP', `${c.name}: cgroup controller is not mounted on this host`);
      applyWrites(e.dir, c.v1Writes(resources, (f) => readIfExists(path.join(e.dir, f))));
    }
  }

  /** Fill cpuset.cpus/mems of new cpuset cgroups from the nearest ancestor that has them. */
  protected prepare(created: string[], _resources: LinuxResources | undefined): void {
    const e = this.entryFor('cpuset');
    if (!e) return;
    const root = e.hierarchy.mountpoint;
    // Directories needing values, outermost first: the new ones, plus empty existing ancestors
    // (a reused leaf is checked as well).
    const chain = created.filter((d) => d.startsWith(root + '/'));
    let dir = chain.length > 0 ? path.dirname(chain[0]) : e.dir;
    const values: string[] = [];
    for (;;) {
      const vals = V1_CPUSET_INHERIT.map((f) => readIfExists(path.join(dir, f)) ?? '');
      if (vals.every((v) => v !== '')) {
        values.push(...vals);
        break;
      }
      if (dir === root || dir.length <= root.length) {
        throw new ShoalError('CGROUP', `${V1_CPUSET_INHERIT[0]}: no ancestor of ${e.dir} has cpus and mems set`);
      }
      chain.unshift(dir);
      dir = path.dirname(dir);
    }
    for (const d of chain) {
      V1_CPUSET_INHERIT.forEach((f, i) => writeCgroupFile(path.join(d, f), values[i]));
    }
  }

  /** Freeze or thaw through the v1 freezer hierarchy. */
  async setFrozen(frozen: boolean): Promise<void> {
    const e = this.entryFor('freezer');
    if (!e) throw new ShoalError('UNSUPPORTED', 'the freezer cgroup controller is not mounted on this host');
    await setFrozenV1(e.dir, frozen);
  }

  /** Whether freezer.state reads FROZEN. */
  isFrozen(): boolean {
    const e = this.entryFor('freezer');
    return e ? isFrozenV1(e.dir) : false;
  }

  /**
   * cgroup.kill on the unified hierarchy (hybrid, kernel >= 5.14) kills everything at once;
   * then, until no pid is left: freeze, list, SIGKILL, thaw (the frozen tasks cannot fork
   * between listing and killing; the kill lands when they are thawed).
   */
  protected async killAll(deadline: number): Promise<void> {
    const u = this.unifiedEntry();
    if (u) {
      try {
        writeCgroupFile(path.join(u.dir, 'cgroup.kill'), '1');
      } catch {
        /* older kernel, or the unified dir is gone: fall through to the signal loop */
      }
    }
    const freezer = this.entryFor('freezer');
    let delay = 1;
    while (Date.now() < deadline) {
      let pids = this.pids();
      if (pids.length === 0) return;
      let frozen = false;
      if (freezer && readIfExists(path.join(freezer.dir, V1_STATE)) !== undefined) {
        try {
          await setFrozenV1(freezer.dir, true, 200);
          frozen = true;
          pids = this.pids();
        } catch {
          /* could not freeze in time: kill anyway */
        }
      }
      killPids(pids);
      if (frozen || (freezer && isFrozenV1(freezer.dir))) {
        try {
          writeCgroupFile(path.join(freezer!.dir, V1_STATE), 'THAWED');
        } catch {
          /* gone */
        }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }
}
