import type { Context } from './context';
import { parseArgs, str, bool, FlagSpec } from './args';
import { CRIU_FLAGS, criuOptions } from './criu-flags';
import { checkpointContainer } from '../runtime/checkpoint';

/** Flags of `checkpoint` (runc's names; page-server, lazy-pages and status-fd are not supported). */
export const CHECKPOINT_FLAGS: FlagSpec[] = [
  ...CRIU_FLAGS,
  { name: 'parent-path', type: 'string' },
  { name: 'leave-running', type: 'bool' },
  { name: 'pre-dump', type: 'bool' },
];

/**
 * `shoal checkpoint [--image-path DIR] [--work-path DIR] [--leave-running] [--tcp-established]
 * [--ext-unix-sk] [--shell-job] [--file-locks] [--pre-dump] [--manage-cgroups-mode MODE] ID`:
 * dump the container with CRIU (criu from $SHOAL_CRIU or PATH).
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, CHECKPOINT_FLAGS);
  await checkpointContainer({
    ...criuOptions(ctx, p, 'checkpoint'),
    parentPath: str(p, 'parent-path'),
    leaveRunning: bool(p, 'leave-running'),
    preDump: bool(p, 'pre-dump'),
  });
  return 0;
}
