/*
 * freezer.
 *   v1: freezer.state — write FROZEN / THAWED; reads FREEZING until every task stopped.
 *   v2: cgroup.freeze — write 1 / 0; cgroup.events has "frozen 1" once the whole subtree is.
 * Both freeze functions poll (1 ms doubling to 10 ms) until the kernel reports the state, and
 * give up after `timeoutMs` (a failed freeze is undone so nothing stays half-frozen).
 */
import * as path from 'path';
import { ShoalError } from '../../errors';
import { readCgroupFile, readIfExists, sleep, writeCgroupFile } from '../fsutil';

/** v1 state file. */
export const V1_STATE = 'freezer.state';
/** v2 control file. */
export const V2_FREEZE = 'cgroup.freeze';
/** v2 events file carrying "frozen 0|1". */
export const V2_EVENTS = 'cgroup.events';

/** Default time to wait for the kernel to reach the requested state. */
export const FREEZE_TIMEOUT_MS = 5000;

/** The "frozen" flag of a cgroup.events text, or undefined if the line is missing. */
export function parseEventsFrozen(text: string | undefined): boolean | undefined {
  const m = /^frozen (\d)$/m.exec(text ?? '');
  return m ? m[1] === '1' : undefined;
}

/** Whether a v1 freezer cgroup is FROZEN (false when the directory is gone). */
export function isFrozenV1(dir: string): boolean {
  return readIfExists(path.join(dir, V1_STATE)) === 'FROZEN';
}

/** Whether a v2 cgroup reports "frozen 1" (false when the directory is gone). */
export function isFrozenV2(dir: string): boolean {
  return parseEventsFrozen(readIfExists(path.join(dir, V2_EVENTS))) === true;
}

/**
 * Freeze or thaw a v1 freezer cgroup and wait until freezer.state says so. While freezing, the
 * FROZEN write is repeated (each write retries stopping the remaining tasks) and every 50
 * rounds the cgroup is briefly thawed so tasks stuck in the kernel can reach a freezable point.
 */
export async function setFrozenV1(dir: string, frozen: boolean, timeoutMs = FREEZE_TIMEOUT_MS): Promise<void> {
  const file = path.join(dir, V1_STATE);
  const want = frozen ? 'FROZEN' : 'THAWED';
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (let round = 1; ; round++) {
    if (frozen && round % 50 === 0) {
      writeCgroupFile(file, 'THAWED');
      await sleep(10);
    }
    writeCgroupFile(file, want);
    const state = readCgroupFile(file);
    if (state === want) return;
    if (Date.now() >= deadline) {
      if (frozen) writeCgroupFile(file, 'THAWED');
      throw new ShoalError('CGROUP', `${V1_STATE}: still ${state} after ${timeoutMs} ms (wanted ${want})`, { path: file });
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 10);
  }
}

/** Freeze or thaw a v2 cgroup (and its subtree) and wait for cgroup.events to report it. */
export async function setFrozenV2(dir: string, frozen: boolean, timeoutMs = FREEZE_TIMEOUT_MS): Promise<void> {
  const ctl = path.join(dir, V2_FREEZE);
  const events = path.join(dir, V2_EVENTS);
  writeCgroupFile(ctl, frozen ? '1' : '0');
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    if (parseEventsFrozen(readCgroupFile(events)) === frozen) return;
    if (Date.now() >= deadline) {
      if (frozen) writeCgroupFile(ctl, '0');
      throw new ShoalError('CGROUP', `${V2_EVENTS}: no "frozen ${frozen ? 1 : 0}" after ${timeoutMs} ms`, { path: events });
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 10);
  }
}
