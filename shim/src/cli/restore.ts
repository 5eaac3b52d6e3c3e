import type { Context } from './context';
import { parseArgs, str, bool, FlagSpec } from './args';
import { CRIU_FLAGS, criuOptions } from './criu-flags';
import { restoreContainer } from '../runtime/checkpoint';

/** Flags of `restore` (runc's names; the console socket and lazy pages are not supported). */
export const RESTORE_FLAGS: FlagSpec[] = [
  ...CRIU_FLAGS,
  { name: 'bundle', alias: 'b', type: 'string' },
  { name: 'detach', alias: 'd', type: 'bool' },
  { name: 'pid-file', type: 'string' },
  { name: 'no-subreaper', type: 'bool' },
  { name: 'no-pivot', type: 'bool' },
];

/**
 * `shoal restore [--image-path DIR] [--bundle DIR] [--detach] [--pid-file F] [--work-path DIR]
 * ... ID`: restore a checkpoint as container ID. Without --detach, waits for the restored init and
 * exits with its status.
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, RESTORE_FLAGS);
  const r = await restoreContainer({
    ...criuOptions(ctx, p, 'restore'),
    bundle: str(p, 'bundle'),
    detach: bool(p, 'detach'),
    pidFile: str(p, 'pid-file'),
  });
  return r.exitCode;
}
