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
import { containerDeviceRules, DeviceEmulator, v1DeviceWrites } from './controllers/devices';
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
    const keys = Object.keys(resources.unified ?? {});
    if (keys.length > 0) {
      throw new ShoalError('CGROUP', `linux.resources.unified["${keys[0]}"]: unified resources require a cgroup v2 host (this host is ${this.mode})`);
    }
    for (const c of CONTROLLERS) {
      if (!c.isSet(resources)) continue;
      const e = this.entryFor(c.name);
      if (!e) {
        // runc's v1 manager: "cannot set <x> limit: container could not join or create cgroup".
        const where = c.name === 'hugetlb' && this.unifiedEntry() ? ' (it is in the unified cgroup2 hierarchy here)' : '';
        throw new ShoalError('CGROUP', `cannot set ${c.name} limit: the ${c.name} cgroup v1 controller is not mounted on this host${where}`);
      }
      applyWrites(e.dir, c.v1Writes(resources, (f) => readIfExists(path.join(e.dir, f))));
    }
    if (this.wantsDevices(resources)) this.applyDevices(resources);
  }

  /** Write the device rules (reset + list at creation, differences on update). */
  private applyDevices(resources: LinuxResources): void {
    const target = DeviceEmulator.from(containerDeviceRules(resources, this.configDevices));
    const e = this.entryFor('devices');
    if (!e) {
      if (resources.devices?.length) throw new ShoalError('CGROUP', 'cannot set devices: the devices cgroup v1 controller is not mounted on this host');
      return;
    }
    // A directory create just made has only what it inherited: reset it without reading that.
    const current = this.fresh.has(e.dir) ? undefined : readIfExists(path.join(e.dir, 'devices.list'));
    applyWrites(e.dir, v1DeviceWrites(target, current));
  }

  /** The v1 hierarchy directory of `controller`; on hybrid hosts v2-only ones ("hugetlb") map to the unified dir if it offers them. */
  controllerDir(controller: string): string | undefined {
    const e = this.entryFor(controller);
    if (e) return e.dir;
    const u = this.unifiedEntry();
    if (u && readIfExists(path.join(u.dir, 'cgroup.controllers'))?.split(' ').includes(controller)) return u.dir;
    return undefined;
  }

  /** cgroup.kill of the unified hierarchy (hybrid hosts, kernel >= 5.14). */
  protected killFile(): string | undefined {
    const u = this.unifiedEntry();
    return u ? path.join(u.dir, 'cgroup.kill') : undefined;
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
  protected async killEverything(deadline: number): Promise<void> {
    // Usually the init is gone already and the cgroup empty: nothing to kill (cgroup.kill would
    // still take the cgroup mutex).
    if (this.pids().length === 0) return;
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
