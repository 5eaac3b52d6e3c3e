import type { Context } from './context';
import { parseArgs, str, bool, num, requireId, FlagSpec } from './args';
import { createContainer } from '../runtime/create';

/** Flags shared by create and run. */
export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'bundle', alias: 'b', type: 'string' },
  { name: 'pid-file', type: 'string' },
  { name: 'console-socket', type: 'string' },
  { name: 'pidfd-socket', type: 'string' },
  { name: 'no-pivot', type: 'bool' },
  { name: 'no-new-keyring', type: 'bool' },
  { name: 'preserve-fds', type: 'number' },
];

/** `shoal create [flags] ID`: set the container up; the init waits for `start`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, CREATE_FLAGS);
  const id = requireId(p, 'create');
  const c = await createContainer({
    store: ctx.store,
    id,
    bundle: str(p, 'bundle') ?? '.',
    pidFile: str(p, 'pid-file'),
    consoleSocket: str(p, 'console-socket'),
    preserveFds: num(p, 'preserve-fds'),
    noPivot: bool(p, 'no-pivot'),
    mode: 'create',
    warn: ctx.warn,
  });
  // The helper exits right after reporting the pid; do not keep the event loop for it.
  c.helper.unref();
  return 0;
}
