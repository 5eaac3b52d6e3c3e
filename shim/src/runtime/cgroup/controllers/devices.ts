/*
 * devices controller. The rules are those of runc: linux.resources.devices in order, then the
 * default allow list (DEFAULT_ALLOWED_DEVICES), then one "rwm" allow per linux.devices entry.
 * They are reduced by an emulator of the kernel's v1 semantics (an "a" rule resets the default
 * and drops every exception; other rules add or remove access bits of one exact type/major/minor
 * entry) to a default action plus exceptions that all have the opposite action.
 *   v1: devices.deny / devices.allow — at creation "a" to reset, then each exception; on update
 *       only the difference to devices.list (no window where the container loses its devices).
 *   v2: a BPF_PROG_TYPE_CGROUP_DEVICE program (native/bpf/devfilter.c), see v2.ts.
 */
import type { LinuxDeviceCgroup, LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import type { CgroupWrite } from './common';

/** One normalized device rule; major/minor -1 mean "*". */
export interface DeviceRule {
  type: 'a' | 'b' | 'c';
  major: number;
  minor: number;
  /** Subset of "rwm", in that order. */
  access: string;
  allow: boolean;
}

const allow = (type: 'b' | 'c', major: number, minor: number, access = 'rwm'): DeviceRule => ({ type, major, minor, access, allow: true });

/** runc's default AllowedDevices: mknod of anything, and the standard character devices. */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceRule[] = [
  allow('c', -1, -1, 'm'),
  allow('b', -1, -1, 'm'),
  allow('c', 1, 3), // /dev/null
  allow('c', 1, 8), // /dev/random
  allow('c', 1, 7), // /dev/full
  allow('c', 5, 0), // /dev/tty
  allow('c', 1, 5), // /dev/zero
  allow('c', 1, 9), // /dev/urandom
  allow('c', 136, -1), // /dev/pts/*
  allow('c', 5, 2), // /dev/ptmx
];

/** Keep only "r", "w", "m" in canonical order; throws on other letters. */
function normAccess(access: string | undefined, what: string): string {
  const a = access ?? 'rwm';
  if (!/^[rwm]*$/.test(a)) throw new ShoalError('INVALID_CONFIG', `devices: invalid access "${a}" in ${what}`);
  return ['r', 'w', 'm'].filter((c) => a.includes(c)).join('');
}

/** Normalize an OCI device cgroup rule (type defaults to "a", missing or -1 numbers to "*"). */
export function normalizeDeviceRule(r: LinuxDeviceCgroup): DeviceRule {
  const type = r.type ?? 'a';
  if (type !== 'a' && type !== 'b' && type !== 'c') {
    throw new ShoalError('INVALID_CONFIG', `devices: invalid device type "${type}" (want a, b or c)`);
  }
  const num = (n: number | undefined) => (typeof n === 'number' && n >= 0 ? Math.floor(n) : -1);
  return { type, major: num(r.major), minor: num(r.minor), access: normAccess(r.access, JSON.stringify(r)), allow: !!r.allow };
}

/** Allow rules ("rwm") for the devices a config creates (linux.devices). */
export function configDeviceRules(devices: Array<{ type: string; major?: number; minor?: number }>): DeviceRule[] {
  return devices
    .filter((d) => d.type === 'c' || d.type === 'b' || d.type === 'u')
    .map((d) => allow(d.type === 'b' ? 'b' : 'c', d.major ?? -1, d.minor ?? -1));
}

/** The full ordered rule list of a container, as runc builds it. */
export function containerDeviceRules(resources: LinuxResources | undefined, extra: DeviceRule[] = []): DeviceRule[] {
  return [...(resources?.devices ?? []).map(normalizeDeviceRule), ...DEFAULT_ALLOWED_DEVICES, ...extra];
}

/** v1 text of a rule without its action: "c 1:3 rwm", "a *:* rwm". */
export function ruleText(r: Pick<DeviceRule, 'type' | 'major' | 'minor' | 'access'>): string {
  const n = (x: number) => (x < 0 ? '*' : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

/** The kernel's device access state: a default action plus exceptions (key "c 1:3" → access). */
export class DeviceEmulator {
  /** Whether devices not listed in `exceptions` are allowed. Starts as an allow list (runc). */
  defaultAllow = false;
  /** Exceptions to the default, keyed "type major:minor", value the access letters. */
  readonly exceptions = new Map<string, string>();

  /** Apply one rule as devices.allow / devices.deny would. */
  apply(r: DeviceRule): void {
    if (r.type === 'a') {
      this.defaultAllow = r.allow;
      this.exceptions.clear();
      return;
    }
    const key = ruleText({ ...r, access: '' }).trimEnd();
    const cur = this.exceptions.get(key) ?? '';
    let next: string;
    if (r.allow !== this.defaultAllow) next = normAccess(cur + r.access, key);
    else next = [...cur].filter((c) => !r.access.includes(c)).join('');
    if (next) this.exceptions.set(key, next);
    else this.exceptions.delete(key);
  }

  /** The exceptions as rules (all with action !defaultAllow). */
  rules(): DeviceRule[] {
    return [...this.exceptions].map(([key, access]) => {
      const m = /^([bc]) (\*|\d+):(\*|\d+)$/.exec(key)!;
      const n = (s: string) => (s === '*' ? -1 : Number(s));
      return { type: m[1] as 'b' | 'c', major: n(m[2]), minor: n(m[3]), access, allow: !this.defaultAllow };
    });
  }

  /** Emulator state after `rules` applied in order to a fresh allow list. */
  static from(rules: DeviceRule[]): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const r of rules) e.apply(r);
    return e;
  }

  /**
   * State read back from a v1 devices.list: "a *:* rwm" means allow-all (the kernel does not list
   * the deny exceptions then: `exact` is false); otherwise the listed allow exceptions.
   */
  static fromList(text: string): { emu: DeviceEmulator; exact: boolean } {
    const e = new DeviceEmulator();
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.includes('a *:* rwm')) {
      e.defaultAllow = true;
      return { emu: e, exact: false };
    }
    for (const l of lines) {
      const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(l);
      if (!m) continue;
      const n = (s: string) => (s === '*' ? -1 : Number(s));
      e.apply({ type: m[1] as 'b' | 'c', major: n(m[2]), minor: n(m[3]), access: m[4], allow: true });
    }
    return { emu: e, exact: true };
  }
}

/**
 * v1 writes that take a cgroup from its current devices.list (undefined: a fresh cgroup) to
 * `target`: a reset with "a" plus every exception when the default changes or the current
 * exceptions are unknown, else only the added and removed access bits.
 */
export function v1DeviceWrites(target: DeviceEmulator, currentList: string | undefined): CgroupWrite[] {
  const grant = (allowIt: boolean) => (allowIt ? 'devices.allow' : 'devices.deny');
  const cur = currentList === undefined ? undefined : DeviceEmulator.fromList(currentList);
  const out: CgroupWrite[] = [];
  if (!cur || !cur.exact || cur.emu.defaultAllow !== target.defaultAllow) {
    out.push({ file: grant(target.defaultAllow), value: 'a' });
    for (const r of target.rules()) out.push({ file: grant(r.allow), value: ruleText(r) });
    return out;
  }
  for (const [key, access] of cur.emu.exceptions) {
    const want = target.exceptions.get(key) ?? '';
    const drop = [...access].filter((c) => !want.includes(c)).join('');
    if (drop) out.push({ file: grant(target.defaultAllow), value: `${key} ${drop}` });
  }
  for (const [key, access] of target.exceptions) {
    const have = cur.emu.exceptions.get(key) ?? '';
    const add = [...access].filter((c) => !have.includes(c)).join('');
    if (add) out.push({ file: grant(!target.defaultAllow), value: `${key} ${add}` });
  }
  return out;
}

const BPF_TYPE = { a: 0, b: 1, c: 2 } as const;
const BPF_ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };

/** The flat rule array of the native attachDeviceFilter (type, major, minor, access bits). */
export function bpfRuleArray(emu: DeviceEmulator): number[] {
  const out: number[] = [];
  for (const r of emu.rules()) {
    out.push(BPF_TYPE[r.type], r.major, r.minor, [...r.access].reduce((a, c) => a | BPF_ACCESS[c], 0));
  }
  return out;
}
