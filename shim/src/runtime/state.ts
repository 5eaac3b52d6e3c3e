import * as fs from 'fs';
import * as path from 'path';
import type { Spec } from '../../../spec/src/config';
import type { CgroupMode } from './cgroup/types';
import { MNT_DETACH, native } from '../native';
import { ShoalError, sysError } from './errors';
import { Errno, errnoError } from './errno';
import { isoTime } from './time';

/** What shoal keeps about a container in <root>/<id>/state.json. */
export interface ContainerState {
  ociVersion: string;
  id: string;
  bundle: string;
  rootfs: string;
  /** Host pid of the init, 0 until the helper reported it. */
  pid: number;
  /** Start time (clock ticks) of the init, so a reused pid is never taken for it. */
  startTime: number;
  /** RFC 3339 creation time. */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  /** "creating" until create finished; the live status is computed, see status.ts. */
  phase: 'creating' | 'created';
  cgroup: { mode: CgroupMode; path: string } | null;
  /** The config the container was created from (hooks, process, namespaces for exec). */
  config: Spec;
  /** Whether the container runs in a new user namespace etc.: kept small, derived at create. */
  systemdCgroup?: boolean;
}

/** The state of a container that is being created: no pid yet, cgroup recorded next. */
export function initialState(id: string, bundle: string, rootfs: string, config: Spec, owner = ''): ContainerState {
  return {
    ociVersion: config.ociVersion,
    id,
    bundle,
    rootfs,
    pid: 0,
    startTime: 0,
    created: isoTime(),
    owner,
    annotations: config.annotations ?? {},
    phase: 'creating',
    cgroup: null,
    config,
  };
}

const ID_RE = /^[\w+\-.]+$/;

/** Check a container id the way runc does: no path separators, no "." or "..". */
export function validateId(id: string | undefined): string {
  if (!id) throw new ShoalError('INVALID_ARGUMENT', 'container id cannot be empty');
  if (!ID_RE.test(id) || id === '.' || id === '..' || id.length > 1024)
    throw new ShoalError('INVALID_ARGUMENT', `invalid container id format: ${id}`);
  return id;
}

/**
 * Swap `tmp` in as `file` (renameat2 RENAME_EXCHANGE), then unlink what is now `tmp` (the old
 * file). False, with nothing changed, where there is nothing to swap with or the filesystem or
 * kernel cannot.
 */
function exchange(tmp: string, file: string): boolean {
  try {
    native().renameExchange(tmp, file);
  } catch (e) {
    const unsupported: number[] = [Errno.EINVAL, Errno.ENOSYS, Errno.ENOENT, Errno.EOPNOTSUPP];
    if (unsupported.includes((e as NodeJS.ErrnoException).errno ?? 0)) return false;
    throw e;
  }
  native().unlinkErrno(tmp); // (or removed with the directory)
  return true;
}

/** The state directory tree under --root (default /run/shoal). */
export class StateStore {
  /** Ids whose directory this store made and has not saved a state into yet. */
  private readonly fresh = new Set<string>();

  constructor(readonly root: string) {}

  /** Directory of one container. */
  dir(id: string): string {
    return path.join(this.root, validateId(id));
  }

  /** Path of the container's state.json. */
  private file(id: string): string {
    return path.join(this.dir(id), 'state.json');
  }

  /** Path of the exec fifo that `start` opens. */
  fifo(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** Create the container's directory; fails with ALREADY_EXISTS for a duplicate id. */
  reserve(id: string): string {
    const d = this.dir(id);
    // (the addon's mkdir: see native.ts; mode 0711 under umask, as fs.mkdirSync would)
    let e = native().mkdirErrno(d, 0o711);
    if (e === Errno.ENOENT) {
      // The root is made once (its mkdir is only paid when it is missing).
      try {
        fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
      } catch (err) {
        throw sysError('INTERNAL', `create state directory ${d}`, err);
      }
      e = native().mkdirErrno(d, 0o711);
    }
    if (e === Errno.EEXIST) throw new ShoalError('ALREADY_EXISTS', `container with id exists: ${id}`);
    if (e !== 0) throw sysError('INTERNAL', `create state directory ${d}`, errnoError(e, 'mkdir', d));
    this.fresh.add(id);
    return d;
  }

  /**
   * Write state.json atomically: a temp file, then a rename into a fresh directory, or an exchange
   * with the old state.json (then the old one is unlinked). A reader sees the old or the new state,
   * never a partial one. The exchange rather than a rename over the old file: on ext4 that rename
   * writes the new file's blocks at once, and every later unlink then frees blocks (about 0.3 ms
   * each on this kind of host). Filesystems without RENAME_EXCHANGE get the rename.
   */
  save(s: ContainerState): void {
    const tmp = path.join(this.dir(s.id), `.state.${process.pid}`);
    const file = this.file(s.id);
    const w = native().writeFileErrno(tmp, JSON.stringify(s), 0o666);
    if (w !== 0) throw errnoError(w, 'open', tmp);
    if (this.fresh.delete(s.id) || !exchange(tmp, file)) {
      const r = native().renameErrno(tmp, file);
      if (r !== 0) throw errnoError(r, 'rename', tmp);
    }
  }

  /** Load a container's state, or throw NOT_FOUND ("container does not exist", as runc says). */
  load(id: string): ContainerState {
    let raw: string;
    try {
      raw = fs.readFileSync(this.file(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
        throw new ShoalError('NOT_FOUND', 'container does not exist');
      throw sysError('INTERNAL', `read state of ${id}`, e);
    }
    try {
      return JSON.parse(raw) as ContainerState;
    } catch {
      throw new ShoalError('INTERNAL', `state of ${id} is corrupt; use delete --force`);
    }
  }

  /** Whether a directory exists for id (even a half-created one without state.json). */
  exists(id: string): boolean {
    return fs.existsSync(this.dir(id));
  }

  /** Remove the container's directory and everything in it. */
  remove(id: string): void {
    const d = this.dir(id);
    // state.json, then the directory; a recursive walk only when more is there (exec.fifo of a
    // container never started, a temp file of a crashed save).
    this.fresh.delete(id);
    native().unlinkErrno(this.file(id)); // (or not there)
    const e = native().rmdirErrno(d);
    if (e !== 0 && e !== Errno.ENOENT) {
      // A crash can leave a mount in the dir (restore's bind of the rootfs): the recursive
      // removal must never walk into it.
      detachMountsUnder(d);
      fs.rmSync(d, { recursive: true, force: true });
    }
  }

  /** Ids of every container under the root. */
  list(): string[] {
    try {
      return fs.readdirSync(this.root).filter((n) => ID_RE.test(n));
    } catch {
      return [];
    }
  }
}

/** Lazily unmounts every mount below `dir` (deepest first), from /proc/self/mountinfo. */
function detachMountsUnder(dir: string): void {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  // (loaded here: a rare path, and `state` or `start` need no cgroup layout)
  const { unescapeMountinfo } = require('./cgroup/detect') as typeof import('./cgroup/detect');
  const prefix = `${path.resolve(dir)}/`;
  const points = text
    .split('\n')
    .map((line) => unescapeMountinfo(line.split(' ')[4] ?? ''))
    .filter((p) => p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      native().umount2(p, MNT_DETACH);
    } catch {
      // already gone
    }
  }
}
