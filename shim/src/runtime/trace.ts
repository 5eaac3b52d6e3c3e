/**
 * Phase timing for start-up work: with SHOAL_TRACE=1 each call prints the milliseconds since the
 * process started and since the previous mark to stderr. Free when the variable is unset.
 */
import { stderr } from './fdwrite';

const on = !!process.env.SHOAL_TRACE;
let last = 0;

/** Record that a phase ended. */
export function trace(label: string): void {
  if (!on) return;
  const now = performance.now();
  stderr(`[shoal trace] ${now.toFixed(1)}ms (+${(now - last).toFixed(1)}) ${label}\n`);
  last = now;
}
