/*
 * Pure cgroup v2 hosts: one directory in the unified hierarchy. Controllers are enabled in
 * cgroup.subtree_control of every ancestor from the root down (never in the container's own
 * cgroup, which holds processes); freezing uses cgroup.freeze/cgroup.events; destroy uses
 * cgroup.kill (kernel >= 5.14) with a SIGKILL loop as fallback.
 */
import * as path from 'path';
import type { LinuxResources } from '../../../../spec/src/config';
import { ShoalError } from '../errors';
import { BaseCgroup, applyWrites, killPids, type CgroupDir } from './handle';
import { CONTROLLERS, V2_WANTED } from './controllers/index';
import { isFrozenV2, setFrozenV2 } from './controllers/freezer';
import { v2Controllers } from './detect';
import { containerDeviceRules, DeviceEmulator, bpfRuleArray } from './controllers/devices';
import { cgroupError, readIfExists, sleep, writeCgroupFile } from './fsutil';
import { native } from '../../native';
import type { CgroupMode } from './types';

/** Reject unified keys that could escape the cgroup directory or are not interface files. */
function checkUnifiedKey(key: string): void {
  if (!/^[a-z0-9_]+\.[a-z0-9_.]+$/.test(key) || key.includes('..')) {
    throw new ShoalError('INVALID_CONFIG', `linux.resources.unified: invalid cgroup file name "${key}"`);
  }
}

/** v2 controllers `resources` needs (their subtree_control must be enabled). */
export function neededV2Controllers(resources: LinuxResources | undefined): string[] {
  if (!resources) return [];
  const out = CONTROLLERS.filter((c) => c.isSet(resources) && c.v2Name !== '').map((c) => c.v2Name);
  for (const key of Object.keys(resources.unified ?? {})) {
    const prefix = key.slice(0, key.indexOf('.'));
    if (prefix !== 'cgroup' && !out.includes(prefix)) out.push(prefix);
  }
  return out;
}

/** A container cgroup on a pure v2 host. */
export class V2Cgroup extends BaseCgroup {
  /** @param entry the container's directory in the unified hierarchy */
  constructor(mode: CgroupMode, p: string, private readonly entry: CgroupDir) {
    super(mode, p, [entry]);
  }

  /** Write the v2 form of every set controller, then the verbatim `unified` entries. */
  apply(resources: LinuxResources): void {
    const read = (f: string) => readIfExists(path.join(this.entry.dir, f));
    for (const c of CONTROLLERS) {
      if (c.isSet(resources)) applyWrites(this.entry.dir, c.v2Writes(resources, read));
    }
    if (resources.devices !== undefined || this.configDevices !== undefined) this.applyDevices(resources);
    for (const [key, value] of Object.entries(resources.unified ?? {})) {
      checkUnifiedKey(key);
      writeCgroupFile(path.join(this.entry.dir, key), value);
    }
  }

  /**
   * Enable the wanted controllers (those of V2_WANTED the host offers) in every ancestor's
   * cgroup.subtree_control, root first. One write per level; if it fails, each controller is
   * retried alone and only a failure for a controller the resources need is an error.
   */
  protected prepare(_created: string[], resources: LinuxResources | undefined): void {
    const available = v2Controllers();
    const needed = neededV2Controllers(resources);
    for (const c of needed) {
      if (!available.has(c)) {
        throw new ShoalError('CGROUP', `cgroup.subtree_control: the ${c} controller is not available on this host`);
      }
    }
    const wanted = V2_WANTED.filter((c) => available.has(c));
    for (const c of needed) if (!wanted.includes(c)) wanted.push(c);
    if (wanted.length === 0) return;
    const root = this.entry.hierarchy.mountpoint;
    const parts = this.entry.path.split('/').filter(Boolean);
    let dir = root;
    for (let i = 0; i < parts.length; i++) {
      const file = path.join(dir, 'cgroup.subtree_control');
      try {
        writeCgroupFile(file, wanted.map((c) => '+' + c).join(' '));
      } catch {
        for (const c of wanted) {
          try {
            writeCgroupFile(file, '+' + c);
          } catch (err) {
            if (needed.includes(c)) throw err;
          }
        }
      }
      dir = path.join(dir, parts[i]);
    }
  }

  /**
   * Load the device rules as an eBPF program attached to the container's directory, replacing
   * the previous one (create and every update).
   */
  private applyDevices(resources: LinuxResources): void {
    const emu = DeviceEmulator.from(containerDeviceRules(resources, this.configDevices));
    try {
      native().attachDeviceFilter(this.entry.dir, bpfRuleArray(emu), emu.defaultAllow);
    } catch (err) {
      const e = cgroupError(this.entry.dir, 'attach BPF device program', err, true);
      if ((err as Error).message.startsWith('BPF verifier')) e.message += `: ${(err as Error).message}`;
      throw e;
    }
  }

  /** The container's unified directory when `controller` is enabled for it. */
  controllerDir(controller: string): string | undefined {
    const ctl = readIfExists(path.join(this.entry.dir, 'cgroup.controllers'));
    if (ctl === undefined) return undefined;
    return controller === '' || ctl.split(' ').includes(controller) ? this.entry.dir : undefined;
  }

  /** cgroup.kill of the container's directory (kernel >= 5.14). */
  protected killFile(): string | undefined {
    return path.join(this.entry.dir, 'cgroup.kill');
  }

  /** Freeze or thaw via cgroup.freeze; resolves once cgroup.events reports it. */
  setFrozen(frozen: boolean): Promise<void> {
    return setFrozenV2(this.entry.dir, frozen);
  }

  /** Whether cgroup.events reports "frozen 1". */
  isFrozen(): boolean {
    return isFrozenV2(this.entry.dir);
  }

  /** cgroup.kill (atomic, recursive) when the kernel has it; SIGKILL each listed pid until empty. */
  protected async killEverything(deadline: number): Promise<void> {
    // Usually the init is gone already and the cgroup empty: nothing to kill (cgroup.kill would
    // still take the cgroup mutex).
    if (this.pids().length === 0) return;
    try {
      writeCgroupFile(path.join(this.entry.dir, 'cgroup.kill'), '1');
    } catch {
      /* kernel < 5.14: signal the pids one by one below */
    }
    let delay = 1;
    while (Date.now() < deadline) {
      const pids = this.pids();
      if (pids.length === 0) return;
      killPids(pids);
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }
}
