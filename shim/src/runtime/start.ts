import * as fs from 'fs';
import { ShoalError } from './errors';
import { runHooks } from './hooks';
import { isAlive } from './proc';
import { ContainerState, StateStore } from './state';
import { computeStatus, can } from './status';
import { hookState } from './create';
import { trace } from './trace';

/**
 * Release a created container's init: open exec.fifo for reading (the init blocks in its open for
 * writing), read its byte, remove the fifo, then run the poststart hooks (warnings only).
 */
export async function startContainer(store: StateStore, id: string, warn: (m: string) => void): Promise<ContainerState> {
  const s = store.load(id);
  const fifo = store.fifo(id);
  const status = computeStatus(s, fifo);
  if (!can.start(status)) throw new ShoalError('INVALID_STATE', `cannot start a container that has ${status === 'creating' ? 'not finished creating' : status === 'stopped' ? 'stopped' : 'already been started'}`);
  trace('start: state loaded');
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new ShoalError('INVALID_STATE', `cannot start an already running container (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    const buf = Buffer.alloc(1);
    // The init opens its end right after ours: the first waits are short.
    let delay = 0.1;
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, 1, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      }
      if (n === 1) break;
      // No byte yet: the init has not opened its end, or it died. It may also have written its
      // byte and exited right after our read, so read once more before giving up.
      if (!isAlive(s.pid, s.startTime)) {
        try {
          if (fs.readSync(fd, buf, 0, 1, null) === 1) break;
        } catch {
          /* EAGAIN: nothing there */
        }
        throw new ShoalError('INVALID_STATE', 'cannot start a container that has stopped');
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5);
    }
  } finally {
    fs.closeSync(fd);
  }
  trace('start: init released');
  fs.rmSync(fifo, { force: true });
  await runHooks('poststart', s.config?.hooks?.poststart, hookState(s, 'running'), { warnOnly: true, warn });
  return s;
}
