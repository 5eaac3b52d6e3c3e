import { spawnSync } from 'child_process';
import type { Hook } from '../../../spec/src/config';
import { ShoalError } from './errors';

/** The state JSON of runtime.md, given to every hook on stdin. */
export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

/**
 * Run the hooks of one kind in the runtime namespace, in order, each with the state on stdin and
 * its own timeout. A failing hook throws HOOK_FAILED naming the kind, index, path and exit, unless
 * warnOnly (poststart, poststop), where it is passed to warn and the remaining hooks still run.
 */
export function runHooks(
  kind: string,
  hooks: Hook[] | undefined,
  state: HookState,
  opts: { warnOnly?: boolean; warn?: (msg: string) => void } = {},
): void {
  if (!hooks || hooks.length === 0) return;
  const input = JSON.stringify(state);
  hooks.forEach((h, i) => {
    const args = h.args && h.args.length ? h.args : [h.path];
    const env: Record<string, string> = {};
    for (const kv of h.env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    const r = spawnSync(h.path, args.slice(1), {
      argv0: args[0],
      env,
      input,
      timeout: h.timeout ? h.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 4 << 20,
    });
    let why = '';
    // A hook that exits without reading its stdin makes the write fail with EPIPE: its exit
    // status still decides.
    if (r.error && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && r.status !== null)) {
      const code = (r.error as NodeJS.ErrnoException).code;
      why = code === 'ETIMEDOUT' ? `timed out after ${h.timeout}s` : `${code ?? r.error.message}`;
    } else if (r.signal) {
      why = `killed by signal ${r.signal}`;
    } else if (r.status !== 0) {
      why = `exit status ${r.status}`;
    }
    if (!why) return;
    const out = `${r.stderr ?? ''}`.trim() || `${r.stdout ?? ''}`.trim();
    const msg = `${kind} hook #${i} (${h.path}): ${why}${out ? `, output: ${out.slice(0, 500)}` : ''}`;
    if (opts.warnOnly) opts.warn?.(msg);
    else throw new ShoalError('HOOK_FAILED', msg);
  });
}
