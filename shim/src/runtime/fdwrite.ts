/*
 * Synchronous writes to the CLI's stdout and stderr. process.stdout/stderr are created on first
 * use and load Node's stream machinery (2-3 ms of a command that takes ~40); the CLI writes whole
 * lines and exits, so a plain write(2) loop does the same job.
 */
import * as fs from 'fs';
import { native, nativeLoaded } from '../native';
import { Errno, errnoError } from './errno';

let pause: Int32Array | undefined;

/** Write all of `data` to `fd`; a closed reader (EPIPE) drops the rest, as runc's output would. */
export function writeFd(fd: number, data: string | Uint8Array): void {
  // Through the addon once it is loaded (the commands that start containers): fs.writeSync and
  // the Buffer calls around it would be compiled for this alone.
  if (nativeLoaded()) {
    const e = native().writeAllErrno(fd, data);
    if (e !== 0 && e !== Errno.EPIPE) throw errnoError(e, 'write');
    return;
  }
  let buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(fs.writeSync(fd, buf));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw e;
      // A non-blocking pipe that is full: wait a millisecond for the reader.
      Atomics.wait((pause ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1);
    }
  }
}

/** Write to stdout. */
export const stdout = (text: string): void => writeFd(1, text);

/** Write to stderr. */
export const stderr = (text: string): void => writeFd(2, text);
