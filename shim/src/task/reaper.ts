/*
 * Exit detection for processes the shim did not spawn itself. The container's init and exec
 * processes are started by the shoal-init helper, which exits once they run, so they are orphans
 * re-parented to the shim (a child subreaper). Each is watched through a pidfd polled on Node's
 * own event loop and reaped by pidfd; nothing ever calls waitpid(-1), which would steal the exit
 * statuses of libuv's own children (logging binaries) and of the helpers, which runtime/helper.ts
 * spawns and reaps through their own pidfds.
 *
 * Other orphans re-parented to the shim (a container without a pid namespace, a daemonizing
 * exec) are reaped on SIGCHLD by scanning the shim's children for zombies that no one claims.
 */
import * as fs from 'fs';
import { native, ExitInfo } from '../native';
import { procStat } from '../runtime/proc';

/** How long to retry waitid when the exited process was not yet re-parented to the shim. */
const REPARENT_TIMEOUT_MS = 10_000;

/** A watched process: its pidfd (for signals that can never hit a recycled pid) and its exit. */
export interface WatchedProcess {
  pid: number;
  /** The pidfd; closed once the process was reaped (signals then fail with ESRCH/EBADF). */
  pidfd: number;
  /** Resolves with the exit status once the process was reaped. */
  exited: Promise<ExitInfo>;
  /** Whether the process has been reaped. */
  reaped(): boolean;
}

/** Pids being watched through a pidfd: the orphan scan must leave their zombies alone. */
const claimed = new Set<number>();

/**
 * Opens a pidfd for `pid` and reaps the process when it exits. While its parent is still alive
 * (the helper that started it) waitid fails with ECHILD: the reap is retried until the process
 * was re-parented to this subreaper.
 */
export function watchProcess(pid: number): WatchedProcess {
  const n = native();
  const pidfd = n.pidfdOpen(pid);
  claimed.add(pid);
  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    const deadline = Date.now() + REPARENT_TIMEOUT_MS;
    const finish = (info: ExitInfo) => {
      done = true;
      claimed.delete(pid);
      n.closeFd(pidfd);
      resolve(info);
    };
    const tryReap = () => {
      let info: ExitInfo | null;
      let retry = false;
      try {
        info = n.pidfdWaitExit(pidfd);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ECHILD' || Date.now() > deadline) {
          // Not our child for good (someone else reaped it): the status is lost.
          return finish({ status: 255, signal: null });
        }
        info = null;
        retry = true;
      }
      if (info) return finish(info);
      // ECHILD: still the helper's child; otherwise a spurious wake-up: poll again.
      if (retry) setTimeout(tryReap, 5);
      else n.watchFdReadable(pidfd, tryReap);
    };
    n.watchFdReadable(pidfd, tryReap);
  });
  return { pid, pidfd, exited, reaped: () => done };
}

/** The pids of the shim's children, from /proc/self/task/<tid>/children. */
function children(): number[] {
  const pids: number[] = [];
  let tids: string[] = [];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return pids;
  }
  for (const tid of tids) {
    try {
      for (const p of fs.readFileSync(`/proc/self/task/${tid}/children`, 'latin1').trim().split(/\s+/)) if (p) pids.push(Number(p));
    } catch {
      // the thread exited meanwhile
    }
  }
  return pids;
}

/** The comm of a process ("" when gone). */
function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  } catch {
    return '';
  }
}

/**
 * Reaps orphaned zombies on SIGCHLD. A zombie child is reaped (waitid by pid) only when no pidfd
 * watch claims it, it is not a shoal-init helper, and it was already a zombie on the previous
 * scan: libuv reaps its own children in the same SIGCHLD round, so a zombie that survives a scan
 * interval is not libuv's. `onReap` sees every reaped orphan. Returns a function that stops it.
 */
export function startOrphanReaper(onReap?: (pid: number, info: ExitInfo) => void, intervalMs = 200): () => void {
  let seen = new Set<number>();
  let timer: NodeJS.Timeout | null = null;
  const scan = () => {
    timer = null;
    const now = new Set<number>();
    for (const pid of children()) {
      // The helper's parent half is reaped through its own pidfd (runtime/helper.ts): before its
      // plan arrives it is "shoal-init" (it names itself so), afterwards "shoal:[parent]".
      if (claimed.has(pid) || procStat(pid)?.state !== 'Z' || isHelperParent(comm(pid))) continue;
      if (!seen.has(pid)) {
        now.add(pid);
        continue;
      }
      try {
        const info = native().waitPid(pid);
        if (info) onReap?.(pid, info);
      } catch {
        // ECHILD: reaped by its owner meanwhile
      }
    }
    seen = now;
    if (now.size > 0) timer = setTimeout(scan, intervalMs);
  };
  const onSigchld = () => {
    if (!timer) timer = setTimeout(scan, intervalMs);
  };
  process.on('SIGCHLD', onSigchld);
  return () => {
    process.off('SIGCHLD', onSigchld);
    if (timer) clearTimeout(timer);
  };
}

/** Whether a process name is the helper's parent half (a child Node spawned and reaps itself). */
function isHelperParent(name: string | undefined): boolean {
  return name === 'shoal-init' || name === 'shoal:[parent]' || (name ?? '').startsWith('memfd:shoal');
}
