/** Atomic file replacement for the layer store's index and registrations. */
import * as fs from 'fs';

/** Write a file atomically: a temp file in the same directory, fsync'd, renamed over. */
export function atomicWrite(file: string, data: string): void {
  const tmp = `${file}.tmp.${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
