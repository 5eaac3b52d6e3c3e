/**
 * Phase timing for start-up work: with SHOAL_TRACE=1 each call prints the milliseconds since the
 * process started and since the previous mark to stderr; with SHOAL_TRACE=/abs/file the marks
 * (with the pid and CLOCK_MONOTONIC milliseconds, to line up several processes) are appended to
 * that file instead (the shim daemon has no stderr). Free when the variable is unset.
 */
import * as fs from 'fs';
import { stderr, writeFd } from './fdwrite';

const dest = process.env.SHOAL_TRACE;
/** Whether marks are recorded (callers can skip building what only a trace would use). */
export const tracing = !!dest;
let fd = -1;
let last = 0;

/** Record that a phase ended. */
export function trace(label: string): void {
  if (!dest) return;
  const now = performance.now();
  const line = `${now.toFixed(1)}ms (+${(now - last).toFixed(1)}) ${label}\n`;
  last = now;
  if (!dest.startsWith('/')) return stderr(`[shoal trace] ${line}`);
  if (fd < 0) fd = fs.openSync(dest, 'a');
  writeFd(fd, `${process.pid} ${(Number(process.hrtime.bigint()) / 1e6).toFixed(2)} ${line}`);
}
