/**
 * OCI mount options -> mount(2) flags, propagation flags and the data string, as runc and crun
 * interpret them.
 */

/** mount(2) flag values (linux/mount.h). */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

// [set, clear] per option name.
const FLAGS: Record<string, [number, number]> = {
  ro: [MS.RDONLY, 0],
  rw: [0, MS.RDONLY],
  nosuid: [MS.NOSUID, 0],
  suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0],
  dev: [0, MS.NODEV],
  noexec: [MS.NOEXEC, 0],
  exec: [0, MS.NOEXEC],
  sync: [MS.SYNCHRONOUS, 0],
  async: [0, MS.SYNCHRONOUS],
  dirsync: [MS.DIRSYNC, 0],
  remount: [MS.REMOUNT, 0],
  mand: [MS.MANDLOCK, 0],
  nomand: [0, MS.MANDLOCK],
  atime: [0, MS.NOATIME],
  noatime: [MS.NOATIME, 0],
  diratime: [0, MS.NODIRATIME],
  nodiratime: [MS.NODIRATIME, 0],
  bind: [MS.BIND, 0],
  rbind: [MS.BIND | MS.REC, 0],
  relatime: [MS.RELATIME, 0],
  norelatime: [0, MS.RELATIME],
  strictatime: [MS.STRICTATIME, 0],
  nostrictatime: [0, MS.STRICTATIME],
  lazytime: [MS.LAZYTIME, 0],
  nolazytime: [0, MS.LAZYTIME],
  nosymfollow: [MS.NOSYMFOLLOW, 0],
  symfollow: [0, MS.NOSYMFOLLOW],
  silent: [MS.SILENT, 0],
  loud: [0, MS.SILENT],
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

// Options shoal accepts but that need no flag here (handled elsewhere or by the kernel default).
const IGNORED = new Set(['tmpcopyup', 'idmap', 'ridmap', 'defaults']);

/** The parsed form of a mount's options. */
export interface ParsedOptions {
  flags: number;
  propagation: number;
  data: string;
  bind: boolean;
}

/** Split OCI mount options into flags, propagation flags and the filesystem data string. */
export function parseMountOptions(options: string[] | undefined): ParsedOptions {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const o of options ?? []) {
    const f = FLAGS[o];
    if (f) {
      flags = (flags | f[0]) & ~f[1];
      continue;
    }
    const p = PROPAGATION[o];
    if (p !== undefined) {
      propagation |= p;
      continue;
    }
    if (IGNORED.has(o)) continue;
    // Recursive attributes (rro, rnosuid ...): applied as the plain flag on a recursive bind.
    if (o.length > 1 && o[0] === 'r' && FLAGS[o.slice(1)] && o !== 'rw' && o !== 'rbind') {
      const g = FLAGS[o.slice(1)];
      flags = (flags | g[0]) & ~g[1];
      continue;
    }
    data.push(o);
  }
  return { flags, propagation, data: data.join(','), bind: (flags & MS.BIND) !== 0 };
}

/** Every option name shoal understands (for the `features` command). */
export function knownMountOptions(): string[] {
  return [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), ...IGNORED].sort();
}

/** rootfsPropagation -> flags for "/", default rslave as runc. */
export function rootPropagation(value: string | undefined): number {
  if (!value) return MS.SLAVE | MS.REC;
  const p = PROPAGATION[value];
  if (p === undefined) throw new Error(`linux.rootfsPropagation: unknown value ${JSON.stringify(value)}`);
  return p;
}
