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
const IGNORED = new Set(['defaults']);

/** MOUNT_ATTR_* values of mount_setattr(2) (linux/mount.h). */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  ATIME_MASK: 0x70,
  RELATIME: 0x0,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  IDMAP: 0x100000,
  NOSYMFOLLOW: 0x200000,
} as const;

/**
 * Recursive mount attributes (runtime-spec 1.1 "rro", "rnosuid" ...): [set, clear] for
 * mount_setattr(AT_RECURSIVE). An access-time option replaces the whole atime field, so it
 * clears MOUNT_ATTR__ATIME and sets its value (relatime is 0), as the kernel requires.
 */
const RECURSIVE: Record<string, [number, number]> = {
  rro: [MOUNT_ATTR.RDONLY, 0],
  rrw: [0, MOUNT_ATTR.RDONLY],
  rnosuid: [MOUNT_ATTR.NOSUID, 0],
  rsuid: [0, MOUNT_ATTR.NOSUID],
  rnodev: [MOUNT_ATTR.NODEV, 0],
  rdev: [0, MOUNT_ATTR.NODEV],
  rnoexec: [MOUNT_ATTR.NOEXEC, 0],
  rexec: [0, MOUNT_ATTR.NOEXEC],
  rnodiratime: [MOUNT_ATTR.NODIRATIME, 0],
  rdiratime: [0, MOUNT_ATTR.NODIRATIME],
  rnosymfollow: [MOUNT_ATTR.NOSYMFOLLOW, 0],
  rsymfollow: [0, MOUNT_ATTR.NOSYMFOLLOW],
  rrelatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rnorelatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rnoatime: [MOUNT_ATTR.NOATIME, MOUNT_ATTR.ATIME_MASK],
  ratime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rstrictatime: [MOUNT_ATTR.STRICTATIME, MOUNT_ATTR.ATIME_MASK],
  rnostrictatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
};

/** Options that are not passed to mount(2) but change how shoal makes the mount. */
const EXTENSIONS = ['idmap', 'ridmap', 'tmpcopyup'];

/** The parsed form of a mount's options. */
export interface ParsedOptions {
  flags: number;
  propagation: number;
  data: string;
  bind: boolean;
  /** MOUNT_ATTR_* to set recursively with mount_setattr(AT_RECURSIVE) (0: none). */
  recAttrSet: number;
  /** MOUNT_ATTR_* to clear recursively (0: none). */
  recAttrClr: number;
  /** "idmap" / "ridmap" (recursive) when the mount is idmapped, else undefined. */
  idmap?: 'idmap' | 'ridmap';
  /** crun's tmpcopyup: copy the covered directory's content into the new tmpfs. */
  tmpcopyup: boolean;
}

/** Split OCI mount options into flags, propagation flags, recursive attributes and the data string. */
export function parseMountOptions(options: string[] | undefined): ParsedOptions {
  let flags = 0;
  let propagation = 0;
  let recAttrSet = 0;
  let recAttrClr = 0;
  let idmap: ParsedOptions['idmap'];
  let tmpcopyup = false;
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
    const r = RECURSIVE[o];
    if (r) {
      // A later option wins over an earlier one for the same attribute.
      recAttrSet = (recAttrSet & ~r[1] & ~r[0]) | r[0];
      recAttrClr = (recAttrClr & ~r[0]) | r[1];
      continue;
    }
    if (o === 'idmap' || o === 'ridmap') {
      idmap = o;
      continue;
    }
    if (o === 'tmpcopyup') {
      tmpcopyup = true;
      continue;
    }
    if (IGNORED.has(o)) continue;
    data.push(o);
  }
  return { flags, propagation, data: data.join(','), bind: (flags & MS.BIND) !== 0, recAttrSet, recAttrClr, idmap, tmpcopyup };
}

/** Every option name shoal understands (for the `features` command). */
export function knownMountOptions(): string[] {
  return [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), ...Object.keys(RECURSIVE), ...EXTENSIONS, ...IGNORED].sort();
}

/** rootfsPropagation -> flags for "/", default rslave as runc. */
export function rootPropagation(value: string | undefined): number {
  if (!value) return MS.SLAVE | MS.REC;
  const p = PROPAGATION[value];
  if (p === undefined) throw new Error(`linux.rootfsPropagation: unknown value ${JSON.stringify(value)}`);
  return p;
}
