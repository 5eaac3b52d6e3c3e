import type { Context } from './context';
import { parseArgs, str, bool, num, requireId } from './args';
import { CREATE_FLAGS } from './create';
import { createContainer, hookState } from '../runtime/create';
import { runHooks } from '../runtime/hooks';
import { startContainer } from '../runtime/start';
import { deleteContainer, destroyContainer } from '../runtime/delete';
import { trace } from '../runtime/trace';
import { forwardSignals, Forwarding } from './forward';
import type { ConsoleSocket } from '../task/console';


/**
 * `shoal run [-d] ID`: create + start. In the foreground it forwards signals to the container,
 * waits for it, deletes it and exits with its status (128+signal when it was killed).
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [...CREATE_FLAGS, { name: 'detach', alias: 'd', type: 'bool' }, { name: 'keep', type: 'bool' }, { name: 'no-subreaper', type: 'bool' }]);
  const id = requireId(p, 'run');
  const detach = bool(p, 'detach');
  // `run -t` in the foreground: shoal itself receives the pty and proxies this terminal.
  let own: ConsoleSocket | undefined;
  // The console modules (and the os module under them) load only for a terminal.
  const openConsole = async (): Promise<string> => (own = await (require('../task/console') as typeof import('../task/console')).ConsoleSocket.listen()).path;
  let stopProxy: (() => Promise<void>) | undefined;
  // Signals are forwarded from the moment the process has a pid (it may run right after).
  let fwd: Forwarding | undefined;
  const c = await createContainer({
    store: ctx.store,
    id,
    bundle: str(p, 'bundle') ?? '.',
    pidFile: str(p, 'pid-file'),
    consoleSocket: str(p, 'console-socket'),
    openConsole: detach ? undefined : openConsole,
    preserveFds: num(p, 'preserve-fds'),
    noPivot: bool(p, 'no-pivot'),
    mode: detach ? 'create' : 'run',
    startAtOnce: !detach,
    onPid: detach ? undefined : (pid) => (fwd = forwardSignals(pid)),
    warn: ctx.warn,
  }).catch((e) => {
    fwd?.stop();
    own?.close();
    throw e;
  });
  if (detach) {
    c.helper.unref();
    try {
      await startContainer(ctx.store, id, ctx.warn);
    } catch (e) {
      await deleteContainer(ctx.store, id, true, ctx.warn);
      throw e;
    }
    return 0;
  }
  let exited = false;
  try {
    if (own) {
      try {
        stopProxy = (require('./console') as typeof import('./console')).proxyConsole(await own.receive());
      } finally {
        own.close();
      }
    }
    // No exec.fifo in the foreground: the process runs already (with a terminal or a pid file,
    // once released); then the poststart hooks.
    c.release?.();
    await runHooks('poststart', c.config.hooks?.poststart, hookState(c.state, 'running'), { warnOnly: true, warn: ctx.warn });
    trace('started');
    const code = await c.helper.exited;
    exited = true;
    trace('container exited');
    await stopProxy?.();
    return code;
  } finally {
    fwd?.stop();
    // Once the init has exited, the state this process holds has all that teardown uses (pid,
    // cgroup, hooks; `update` only changes the stored resources), so it is torn down from that
    // without reading it back; otherwise (a failed start) as `delete --force` would.
    if (!bool(p, 'keep')) {
      if (exited) await destroyContainer(ctx.store, c.state, { warn: ctx.warn, runPoststop: true });
      else await deleteContainer(ctx.store, id, true, ctx.warn);
    }
    trace('deleted');
    // The helper reported the exit before ending, and ends by tearing the container's namespaces
    // down (in parallel with the teardown above): nothing of the container outlives `run`.
    if (exited) await c.helper.gone;
    trace('helper gone');
  }
}
