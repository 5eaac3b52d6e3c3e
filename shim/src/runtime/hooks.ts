import type * as ChildProcessModule from 'child_process';
import type { Hook } from '../../../spec/src/config';
import { ShoalError } from './errors';
import { native } from '../native';

/** The state JSON of runtime.md, given to every hook on stdin. */
export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

const MAX_OUTPUT = 4 << 20;

/** Whether this process's inherited fds were made close-on-exec (once, before the first hook). */
let fdsSealed = false;

/** Run one hook: state on stdin, output kept for the error, SIGKILL at its timeout. */
function runOne(h: Hook, input: string): Promise<{ why: string; out: string }> {
  return new Promise((resolve) => {
    const args = h.args && h.args.length ? h.args : [h.path];
    const env: Record<string, string> = {};
    for (const kv of h.env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    let out = '';
    let timedOut = false;
    // Loaded here: most containers have no hooks, and child_process costs ~5 ms to load.
    const { spawn } = require('child_process') as typeof ChildProcessModule;
    // A hook gets its stdio only (as runc's do): not the fds our own caller left open without
    // close-on-exec, which every child would inherit. (The container's preserved fds go to the
    // helper by explicit dup2, unaffected.)
    if (!fdsSealed) {
      native().cloexecFrom(3);
      fdsSealed = true;
    }
    const child = spawn(h.path, args.slice(1), { argv0: args[0], env, stdio: ['pipe', 'pipe', 'pipe'] });
    const collect = (d: Buffer) => {
      if (out.length < MAX_OUTPUT) out += d.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    // A hook that exits without reading its stdin makes the write fail with EPIPE: its exit
    // status still decides.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const timer = h.timeout
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, h.timeout * 1000)
      : undefined;
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      resolve({ why: (e as NodeJS.ErrnoException).code ?? e.message, out });
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const why = timedOut ? `timed out after ${h.timeout}s` : signal ? `killed by signal ${signal}` : code !== 0 ? `exit status ${code}` : '';
      resolve({ why, out });
    });
  });
}

/**
 * Run the hooks of one kind in the runtime namespace, in order, each with the state on stdin and
 * its own timeout. Asynchronous, so the shim's event loop keeps serving other containers while a
 * hook runs. A failing hook throws HOOK_FAILED naming the kind, index, path and exit, unless
 * warnOnly (poststart, poststop), where it is passed to warn and the remaining hooks still run.
 */
export async function runHooks(
  kind: string,
  hooks: Hook[] | undefined,
  state: HookState,
  opts: { warnOnly?: boolean; warn?: (msg: string) => void } = {},
): Promise<void> {
  if (!hooks || hooks.length === 0) return;
  const input = JSON.stringify(state);
  for (const [i, h] of hooks.entries()) {
    const { why, out } = await runOne(h, input);
    if (!why) continue;
    const o = out.trim();
    const msg = `${kind} hook #${i} (${h.path}): ${why}${o ? `, output: ${o.slice(0, 500)}` : ''}`;
    if (opts.warnOnly) opts.warn?.(msg);
    else throw new ShoalError('HOOK_FAILED', msg);
  }
}
