/**
 * Linux capabilities: the name table, masks for the helper's OP_CAPS record and the list the
 * `features` command reports.
 *
 * The helper (native/helper/caps.c) receives five hex u64 masks, bit n = capability n, in the
 * order bounding, effective, inheritable, permitted, ambient. Names are resolved here so the C
 * code needs no table.
 */
import * as fs from 'fs';

/** Capability names indexed by number, from <linux/capability.h> (CAP_CHOWN = 0 ...). */
export const CAPABILITY_NAMES: readonly string[] = [
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE', // 1
  'CAP_DAC_READ_SEARCH', // 2
  'CAP_FOWNER', // 3
  'CAP_FSETID', // 4
  'CAP_KILL', // 5
  'CAP_SETGID', // 6
  'CAP_SETUID', // 7
  'CAP_SETPCAP', // 8
  'CAP_LINUX_IMMUTABLE', // 9
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST', // 11
  'CAP_NET_ADMIN', // 12
  'CAP_NET_RAW', // 13
  'CAP_IPC_LOCK', // 14
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE', // 16
  'CAP_SYS_RAWIO', // 17
  'CAP_SYS_CHROOT', // 18
  'CAP_SYS_PTRACE', // 19
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN', // 21
  'CAP_SYS_BOOT', // 22
  'CAP_SYS_NICE', // 23
  'CAP_SYS_RESOURCE', // 24
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG', // 26
  'CAP_MKNOD', // 27
  'CAP_LEASE', // 28
  'CAP_AUDIT_WRITE', // 29
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP', // 31
  'CAP_MAC_OVERRIDE', // 32
  'CAP_MAC_ADMIN', // 33
  'CAP_SYSLOG', // 34
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND', // 36
  'CAP_AUDIT_READ', // 37
  'CAP_PERFMON', // 38
  'CAP_BPF', // 39
  'CAP_CHECKPOINT_RESTORE', // 40
];

const CAP_NUMBERS: ReadonlyMap<string, number> = new Map(CAPABILITY_NAMES.map((n, i) => [n, i]));

/** The capability sets of process.capabilities (each a list of "CAP_*" names). */
export interface CapabilitySets {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

/** Called once per name that is unknown, or known but beyond what this kernel supports. */
export type CapWarning = (name: string, reason: 'unknown' | 'unavailable') => void;

let cachedLastCap: number | undefined;

/**
 * The highest capability number the running kernel supports, from
 * /proc/sys/kernel/cap_last_cap. Falls back to the last capability in our table when the file is
 * unreadable (e.g. no /proc), so nothing is silently lost on such hosts. Cached.
 */
export function kernelLastCap(): number {
  if (cachedLastCap !== undefined) return cachedLastCap;
  let last = CAPABILITY_NAMES.length - 1;
  try {
    const v = Number.parseInt(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    if (Number.isInteger(v) && v >= 0 && v < 64) last = v;
  } catch {
    // keep the table's last capability
  }
  cachedLastCap = last;
  return last;
}

/** Capability number for a "CAP_*" name, or undefined when the name is not in the table. */
export function capNumber(name: string): number | undefined {
  return CAP_NUMBERS.get(name);
}

/**
 * Bit mask of the named capabilities. Like runc, names that are unknown, or known but not
 * supported by this kernel (above lastCap), are left out and reported through `warn` instead of
 * failing the container. Names must be spelled exactly ("CAP_NET_RAW"), as runc requires.
 */
export function capMask(names: string[] | undefined, warn?: CapWarning, lastCap: number = kernelLastCap()): bigint {
  let mask = 0n;
  for (const name of names ?? []) {
    const n = CAP_NUMBERS.get(name);
    if (n === undefined) {
      warn?.(name, 'unknown');
    } else if (n > lastCap) {
      warn?.(name, 'unavailable');
    } else {
      mask |= 1n << BigInt(n);
    }
  }
  return mask;
}

/**
 * The five arguments of OP_CAPS as hex strings without prefix, in the helper's order: bounding,
 * effective, inheritable, permitted, ambient. A missing set is empty (as in runc, an absent list
 * inside a present capabilities object means "none").
 */
export function capsRecordArgs(caps: CapabilitySets, warn?: CapWarning, lastCap: number = kernelLastCap()): string[] {
  const sets = [caps.bounding, caps.effective, caps.inheritable, caps.permitted, caps.ambient];
  return sets.map((s) => capMask(s, warn, lastCap).toString(16));
}

/** Every capability name this kernel supports, in number order (for the `features` command). */
export function allCapabilityNames(lastCap: number = kernelLastCap()): string[] {
  return CAPABILITY_NAMES.slice(0, Math.min(lastCap, CAPABILITY_NAMES.length - 1) + 1);
}
