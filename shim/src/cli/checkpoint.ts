import type { Context } from './context';
import { parseArgs, str, bool, requireId, FlagSpec } from './args';
import { checkpointContainer } from '../runtime/checkpoint';

/** Flags of `checkpoint` (runc's names; page-server, lazy-pages and status-fd are not supported). */
export const CHECKPOINT_FLAGS: FlagSpec[] = [
  { name: 'image-path', type: 'string' },
  { name: 'work-path', type: 'string' },
  { name: 'parent-path', type: 'string' },
  { name: 'leave-running', type: 'bool' },
  { name: 'tcp-established', type: 'bool' },
  { name: 'ext-unix-sk', type: 'bool' },
  { name: 'shell-job', type: 'bool' },
  { name: 'file-locks', type: 'bool' },
  { name: 'pre-dump', type: 'bool' },
  { name: 'manage-cgroups-mode', type: 'string' },
];

/**
 * `shoal checkpoint [--image-path DIR] [--work-path DIR] [--leave-running] [--tcp-established]
 * [--ext-unix-sk] [--shell-job] [--file-locks] [--pre-dump] [--manage-cgroups-mode MODE] ID`:
 * dump the container with CRIU (criu from $SHOAL_CRIU or PATH).
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, CHECKPOINT_FLAGS);
  const id = requireId(p, 'checkpoint');
  await checkpointContainer({
    store: ctx.store,
    id,
    imagePath: str(p, 'image-path'),
    workPath: str(p, 'work-path'),
    parentPath: str(p, 'parent-path'),
    leaveRunning: bool(p, 'leave-running'),
    tcpEstablished: bool(p, 'tcp-established'),
    extUnixSk: bool(p, 'ext-unix-sk'),
    shellJob: bool(p, 'shell-job'),
    fileLocks: bool(p, 'file-locks'),
    preDump: bool(p, 'pre-dump'),
    manageCgroupsMode: str(p, 'manage-cgroups-mode'),
    warn: ctx.warn,
  });
  return 0;
}
