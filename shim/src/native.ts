/*
 * The typed contract of the native addon (native/addon/addon.cc) and the locations of the native
 * executables built by the same binding.gyp. Everything is resolved lazily: the CLI's hot path
 * (state, list ...) must not pay for dlopen unless it uses a native call.
 *
 * Native calls throw Errors shaped like Node's system errors: `code` is the errno name ('ESRCH'),
 * `errno` the number, `syscall` the failing call; bad arguments throw a TypeError.
 */
import * as fs from 'fs';
import * as path from 'path';

/** umount2(2)'s lazy-detach flag (linux/mount.h). */
export const MNT_DETACH = 2;

/** How a child exited, as reported by `pidfdWaitExit`. */
export interface ExitInfo {
  /** The exit code, or 128 + signal number when the process was killed by a signal. */
  status: number;
  /** The signal number that killed the process, or null when it exited normally. */
  signal: number | null;
}

/** A file descriptor received over a unix socket together with the message it came with. */
export interface ReceivedFd {
  /** The received descriptor; it is CLOEXEC and owned by the caller. */
  fd: number;
  /** The message bytes sent alongside the descriptor, decoded as UTF-8. */
  data: string;
}

/** The functions exported by shoal_native.node. All fds it creates are CLOEXEC. */
export interface NativeBinding {
  /** pidfd_open(2): a pidfd for `pid`, so later signals and waits cannot hit a recycled pid. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(2): sends `sig` to the process behind the pidfd. */
  pidfdSendSignal(fd: number, sig: number): void;
  /**
   * Non-blocking waitid(P_PIDFD, WEXITED|WNOHANG): reaps the process if it has exited, else
   * returns null. Only works for the caller's own children (ECHILD otherwise).
   */
  pidfdWaitExit(fd: number): ExitInfo | null;
  /** close(2). */
  closeFd(fd: number): void;
  /** flock(LOCK_EX), waiting for it: 0 or its errno. */
  flockExclusive(fd: number): number;
  /**
   * renameat2(RENAME_EXCHANGE): swaps two existing names atomically (EINVAL where the filesystem
   * cannot). Replacing a file this way, then unlinking the old one, spares ext4 the immediate
   * block allocation that a rename over an existing file forces (auto_da_alloc).
   */
  renameExchange(a: string, b: string): void;
  /** mkdir(2): 0 or its errno (none of these makes an exception object for an expected errno). */
  mkdirErrno(path: string, mode: number): number;
  /** rmdir(2): 0 or its errno. */
  rmdirErrno(path: string): number;
  /** unlink(2): 0 or its errno. */
  unlinkErrno(path: string): number;
  /** rename(2): 0 or its errno. */
  renameErrno(from: string, to: string): number;
  /** Create or truncate `path` (mode for a new file) and write all of `text` as UTF-8: 0 or the errno. */
  writeFileErrno(path: string, text: string, mode: number): number;
  /** Write all of a string (as UTF-8) or bytes, waiting while a non-blocking fd is full: 0 or the errno. */
  writeAllErrno(fd: number, data: string | Uint8Array): number;
  /**
   * Open `path` O_WRONLY and write each value with its own write(2): 0, or [index, errno] of the
   * first failure (index -1: the open failed).
   */
  writeValues(path: string, values: readonly string[]): 0 | [number, number];
  /** One read(2) of up to `max` bytes as a latin1 string ('' at EOF), or the errno (EAGAIN: nothing yet). */
  readLatin1(fd: number, max: number): string | number;
  /** prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to this process. */
  setChildSubreaper(on: boolean): void;
  /**
   * Blocking recvmsg(2) of one message carrying an fd via SCM_RIGHTS (e.g. a pty master from a
   * console socket). Throws ECONNRESET if the peer closed, EBADF if the message had no fd.
   */
  recvFd(socketFd: number): ReceivedFd;
  /** sendmsg(2) of `fd` via SCM_RIGHTS with `data` (at most 4096 bytes) as the payload. */
  sendFd(socketFd: number, fd: number, data: string): void;
  /** socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC): two connected descriptors. */
  socketpair(): [number, number];
  /** ptsname_r(3): the path of the pty slave for a master fd (e.g. "/dev/pts/3"). */
  ptsname(masterFd: number): string;
  /** ioctl(TIOCSWINSZ): sets a terminal's size. */
  setWinsize(fd: number, rows: number, cols: number): void;
  /** prctl(PR_SET_NAME) on the calling thread, so `ps` shows which stage is running. */
  prctlSetName(name: string): void;
  /** Whether FD_CLOEXEC is set on `fd` (used to check no host fd leaks into a container). */
  fdIsCloexec(fd: number): boolean;
  /**
   * Calls `callback(status)` once, on Node's event loop, when `fd` becomes readable (a pidfd: its
   * process exited); status < 0 is a libuv error. Returns an id for `unwatchFd`. The fd must stay
   * open until the callback ran or the watch was cancelled. A pending watch keeps the loop alive.
   */
  watchFdReadable(fd: number, callback: (status: number) => void): number;
  /** Cancels a `watchFdReadable` watch; unknown or already fired ids are ignored. */
  unwatchFd(id: number): void;
  /**
   * Non-blocking waitid(P_PID, WEXITED|WNOHANG) of one child by pid (orphans re-parented to a
   * subreaper): null while it runs, ECHILD when it is not our child.
   */
  waitPid(pid: number): ExitInfo | null;
  /** pipe2(O_CLOEXEC): [readFd, writeFd], both blocking. */
  pipe(): [number, number];
  /** umount2(2); `flags` are MNT_* bits (MNT_DETACH = 2). */
  umount2(target: string, flags: number): void;
  /**
   * mount(2) on a threadpool thread (the shim's event loop keeps running meanwhile); `flags` are
   * MS_* bits, `data` the filesystem options ("" for none).
   */
  mountAsync(source: string, target: string, fstype: string, flags: number, data?: string): Promise<void>;
  /** umount2(2) on a threadpool thread. */
  umount2Async(target: string, flags: number): Promise<void>;
  /**
   * cgroup v2 device filter: builds a BPF_PROG_TYPE_CGROUP_DEVICE program from `rules` (flat,
   * 4 numbers per rule: type 0 any / 1 block / 2 char, major, minor (-1 = any), access bits
   * 1 mknod / 2 read / 4 write), loads it, attaches it to the cgroup directory `cgroupDir`
   * (BPF_F_ALLOW_MULTI) and detaches the device programs attached there before. A matching rule
   * yields !defaultAllow, no match yields defaultAllow. Returns the new program's id.
   */
  attachDeviceFilter(cgroupDir: string, rules: number[], defaultAllow: boolean): number;
  /** Number of device programs (BPF_CGROUP_DEVICE) attached to a cgroup v2 directory. */
  deviceFilterCount(cgroupDir: string): number;
  /** eventfd(0, EFD_CLOEXEC): a blocking eventfd; wait for it with `watchFdReadable`. */
  eventfd(): number;
  /**
   * posix_spawn (vfork) of `file` (or of the memfd `exeFd`, or of a sealed copy it makes of
   * `sealFrom`; argv[0] still `file`) with argv [file, ...args], an empty environment, default
   * signals and an empty mask, in `cwd`. fds[i] becomes the child's fd i (-1: /dev/null) and the
   * child end of a new AF_UNIX stream socketpair becomes fd fds.length. Returns the child's pid,
   * a pidfd for it, `sync`, the parent's end of the socketpair (CLOEXEC, non-blocking), and
   * `exeFd`, the sealed copy made from `sealFrom` (the caller's to keep), or -1.
   */
  spawnHelper(file: string, args: string[], fds: number[], cwd: string, exeFd?: number, sealFrom?: string): SpawnedHelper;
  /**
   * spawnHelper on the addon's spawner thread (one for the life of the process: the helper's
   * parent-death signal follows the thread that made it): returns at once with an id for
   * `spawnHelperJoin`, which waits for the start and returns (or throws) what spawnHelper would.
   * The fds are duplicated before it returns. Every start must be joined.
   */
  spawnHelperStart(file: string, args: string[], fds: number[], cwd: string, exeFd?: number, sealFrom?: string): number;
  spawnHelperJoin(id: number): SpawnedHelper;
  /**
   * The parent's end of a started helper's sync channel before `spawnHelperJoin` (blocking, and
   * still owned by the start: the join hands it over, or closes it when the start failed). What
   * is written to it waits there for the helper; a failed start shows at the join.
   */
  spawnHelperChannel(id: number): number;
  /**
   * A sealed memfd copy of the file at `path` (CLOEXEC): `spawnHelper`'s exeFd. A helper started
   * from it needs no sealed re-exec of its own.
   */
  sealedCopy(path: string): number;
  /**
   * _exit(code): ends the process at once, skipping Node's exit (handlers and teardown). Unless
   * `hold` is false, the freeing of its memory is left to a short-lived "exit-hold" process that
   * shares it, so the caller learns of the exit 3-4 ms sooner.
   */
  exitNow(code: number, hold?: boolean): never;
  /** Marks every fd from `low` up close-on-exec (what our caller left open reaches no child). */
  cloexecFrom(low: number): void;
}

/** A helper started by spawnHelper. */
export interface SpawnedHelper {
  pid: number;
  pidfd: number;
  sync: number;
  exeFd: number;
}

const BUILD_TYPES = ['Release', 'Debug'];

let cachedRoot: string | undefined;
let cachedBinding: NativeBinding | undefined;

/**
 * The repository (or installed package) root: the nearest ancestor of this file that holds
 * binding.gyp. Walking up works both from build/shim/src (compiled) and shim/src (sources).
 */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return (cachedRoot = dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Fall back to the layout we compile to: <root>/build/shim/src/native.js.
  return (cachedRoot = path.resolve(__dirname, '..', '..', '..'));
}

/** Candidate paths of a build artifact, in search order (Release before Debug). */
function candidates(file: string): string[] {
  const root = repoRoot();
  return BUILD_TYPES.map((t) => path.join(root, 'build', t, file));
}

/** Thrown when a native artifact is not built; `tried` lists every path searched. */
export class NativeNotFoundError extends Error {
  /** Stable code, like Node's system errors. */
  readonly code = 'NATIVE_NOT_FOUND';
  constructor(
    readonly artifact: string,
    readonly tried: string[],
    cause?: unknown,
  ) {
    super(
      `${artifact} not found or not loadable (run \`npm run build\`); tried:\n` +
        tried.map((p) => `  ${p}`).join('\n') +
        (cause ? `\nlast error: ${(cause as Error).message ?? String(cause)}` : ''),
    );
    this.name = 'NativeNotFoundError';
  }
}

function findExecutable(file: string): string {
  const tried = candidates(file);
  for (const p of tried) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // try the next build type
    }
  }
  throw new NativeNotFoundError(file, tried);
}

/** Whether the addon is loaded already (no load is started). */
export function nativeLoaded(): boolean {
  return cachedBinding !== undefined;
}

/**
 * The addon, loaded on first use from build/Release then build/Debug. Throws NativeNotFoundError
 * listing every path tried (and the last dlopen error, if a file existed but failed to load).
 */
export function native(): NativeBinding {
  if (cachedBinding) return cachedBinding;
  const tried = candidates('shoal_native.node');
  let lastErr: unknown;
  for (const p of tried) {
    if (!fs.existsSync(p)) continue;
    try {
      // process.dlopen, not require: the same dlopen without the module loader's resolution and
      // its first-use set-up (about a millisecond of a cold start).
      const m = { exports: {} as NativeBinding };
      process.dlopen(m, p);
      cachedBinding = m.exports;
      return cachedBinding;
    } catch (err) {
      lastErr = err;
    }
  }
  throw new NativeNotFoundError('shoal_native.node', tried, lastErr);
}

/** Absolute path of the `shoal-init` helper executable (build/Release, then build/Debug). */
export function helperPath(): string {
  return findExecutable('shoal-init');
}

/** Absolute path of the `shoal-probe` in-container conformance probe (Release, then Debug). */
export function probePath(): string {
  return findExecutable('shoal-probe');
}
