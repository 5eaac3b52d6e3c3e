/*
 * Create's rootfs mounts, mounted by the shim on <bundle>/rootfs (containerd leaves it empty for
 * runtime v2) and unmounted on delete. Options are split like containerd's mount package: known
 * flag names become MS_* bits, everything else is filesystem data (overlay's lowerdir=...).
 */
import { MNT_DETACH, native } from '../native';
import { ShoalError } from '../runtime/errors';

/** One containerd.types.Mount. */
export interface RootfsMount {
  type: string;
  source: string;
  target?: string;
  options?: string[];
}

const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128, NOATIME: 1024, NODIRATIME: 2048, BIND: 4096, REC: 16384, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21, STRICTATIME: 1 << 24 };

/** Flag options: [set, clear]. */
const FLAGS: Record<string, [number, number]> = {
  ro: [MS.RDONLY, 0], rw: [0, MS.RDONLY],
  nosuid: [MS.NOSUID, 0], suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0], dev: [0, MS.NODEV],
  noexec: [MS.NOEXEC, 0], exec: [0, MS.NOEXEC],
  sync: [MS.SYNCHRONOUS, 0], async: [0, MS.SYNCHRONOUS],
  dirsync: [MS.DIRSYNC, 0], mand: [MS.MANDLOCK, 0], nomand: [0, MS.MANDLOCK],
  noatime: [MS.NOATIME, 0], atime: [0, MS.NOATIME],
  nodiratime: [MS.NODIRATIME, 0], diratime: [0, MS.NODIRATIME],
  relatime: [MS.RELATIME, 0], norelatime: [0, MS.RELATIME],
  strictatime: [MS.STRICTATIME, 0], nostrictatime: [0, MS.STRICTATIME],
  bind: [MS.BIND, 0], rbind: [MS.BIND | MS.REC, 0], remount: [MS.REMOUNT, 0],
  defaults: [0, 0],
};

/** Splits mount options into MS_* flags and the data string. */
export function parseMountOptions(options: string[] = []): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (f) flags = (flags | f[0]) & ~f[1];
    else data.push(o);
  }
  return { flags, data: data.join(',') };
}

/**
 * Mounts `mounts` in order on `target`; on failure the ones already mounted are undone. The
 * mount calls run on the threadpool: an overlay mount can wait on kernel locks that other
 * containers' setup holds, and the shim's event loop serves every other container meanwhile.
 */
export async function mountRootfs(mounts: RootfsMount[], target: string): Promise<void> {
  const n = native();
  let done = 0;
  try {
    for (const m of mounts) {
      const { flags, data } = parseMountOptions(m.options);
      const isBind = m.type === 'bind' || m.type === 'rbind' || (flags & MS.BIND) !== 0;
      if (!isBind) {
        await n.mountAsync(m.source, target, m.type, flags, data);
        done++;
        continue;
      }
      const rec = m.type === 'rbind' || (flags & MS.REC) !== 0 ? MS.REC : 0;
      await n.mountAsync(m.source, target, '', MS.BIND | rec, '');
      done++;
      // A bind mount ignores ro, nosuid... at first: they take a remount, as mount(8) does.
      const extra = flags & (MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
      if (extra) await n.mountAsync('', target, '', MS.REMOUNT | MS.BIND | extra, '');
    }
  } catch (e) {
    for (; done > 0; done--) await unmountOnce(target);
    const err = e as NodeJS.ErrnoException;
    throw new ShoalError('SETUP_FAILED', `mount rootfs on ${target}: ${err.code ?? err.message}`, { errno: err.code, path: target });
  }
}

async function unmountOnce(target: string): Promise<boolean> {
  try {
    await native().umount2Async(target, 0);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return false;
    if (code === 'EBUSY') {
      await native().umount2Async(target, MNT_DETACH);
      return true;
    }
    throw e;
  }
}

/** Unmounts everything stacked on `target` (until it is no longer a mount point). */
export async function unmountRootfs(target: string): Promise<void> {
  for (let i = 0; i < 64 && (await unmountOnce(target)); i++);
}
