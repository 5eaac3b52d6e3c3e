import * as fs from 'fs';
import type { Context } from './context';
import { parseArgs, str, bool, num, requireId } from './args';
import type { Process } from '../../../spec/src/config';
import { execProcess } from '../runtime/exec';
import { ShoalError } from '../runtime/errors';
import { forwardSignals } from './forward';
import { proxyConsole } from './console';
import { ConsoleSocket } from '../task/console';


/**
 * `shoal exec [flags] ID [COMMAND ARGS...]` or `exec --process FILE ID`. Without --process the
 * process is the container's own config.process with the flags applied, as runc does.
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'process', alias: 'p', type: 'string' },
    { name: 'detach', alias: 'd', type: 'bool' },
    { name: 'pid-file', type: 'string' },
    { name: 'console-socket', type: 'string' },
    { name: 'tty', alias: 't', type: 'bool' },
    { name: 'cwd', type: 'string' },
    { name: 'env', alias: 'e', type: 'list' },
    { name: 'user', alias: 'u', type: 'string' },
    { name: 'additional-gids', alias: 'g', type: 'list' },
    { name: 'cap', alias: 'c', type: 'list' },
    { name: 'no-new-privs', type: 'bool' },
    { name: 'apparmor', type: 'string' },
    { name: 'process-label', type: 'string' },
    { name: 'preserve-fds', type: 'number' },
    { name: 'ignore-paused', type: 'bool' },
    { name: 'cgroup', type: 'list' },
  ]);
  const id = requireId(p, 'exec');
  let proc: Process;
  const file = str(p, 'process');
  if (file) {
    try {
      proc = JSON.parse(fs.readFileSync(file, 'utf8')) as Process;
    } catch (e) {
      throw new ShoalError('INVALID_ARGUMENT', `process ${file}: ${(e as Error).message}`);
    }
  } else {
    const base = ctx.store.load(id).config.process ?? ({ args: [], cwd: '/' } as unknown as Process);
    proc = JSON.parse(JSON.stringify(base)) as Process;
    proc.args = p.args.slice(1);
    if (!proc.args.length) throw new ShoalError('INVALID_ARGUMENT', 'exec: command is required (or --process FILE)');
    proc.terminal = bool(p, 'tty');
    const cwd = str(p, 'cwd');
    if (cwd) proc.cwd = cwd;
    const env = (p.flags.env as string[] | undefined) ?? [];
    if (env.length) proc.env = [...(proc.env ?? []), ...env];
    const user = str(p, 'user');
    if (user) {
      const [u, g] = user.split(':');
      if (!/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g))) throw new ShoalError('INVALID_ARGUMENT', `--user ${user}: must be uid[:gid]`);
      proc.user = { ...(proc.user ?? { uid: 0, gid: 0 }), uid: Number(u), gid: g === undefined ? proc.user?.gid ?? 0 : Number(g) };
    }
    const gids = (p.flags['additional-gids'] as string[] | undefined) ?? [];
    if (gids.length) proc.user = { ...(proc.user ?? { uid: 0, gid: 0 }), additionalGids: gids.map(Number) };
    const caps = (p.flags.cap as string[] | undefined) ?? [];
    if (caps.length) {
      const c = (proc.capabilities ??= {});
      for (const set of ['bounding', 'effective', 'permitted'] as const) c[set] = [...new Set([...(c[set] ?? []), ...caps])];
    }
    if (bool(p, 'no-new-privs')) proc.noNewPrivileges = true;
  }
  const detach = bool(p, 'detach');
  let own: ConsoleSocket | undefined;
  if (proc.terminal && !detach && !str(p, 'console-socket')) own = await ConsoleSocket.listen();
  const { pid, helper } = await execProcess({
    store: ctx.store,
    id,
    process: proc,
    detach,
    pidFile: str(p, 'pid-file'),
    consoleSocket: own?.path ?? str(p, 'console-socket'),
    preserveFds: num(p, 'preserve-fds'),
  }).catch((e) => {
    own?.close();
    throw e;
  });
  let stopProxy: (() => Promise<void>) | undefined;
  if (own) {
    try {
      stopProxy = proxyConsole(await own.receive());
    } finally {
      own.close();
    }
  }
  if (detach) {
    helper.unref();
    return 0;
  }
  const fwd = forwardSignals(pid);
  try {
    const code = await helper.exited;
    await stopProxy?.();
    return code;
  } finally {
    fwd.stop();
  }
}
