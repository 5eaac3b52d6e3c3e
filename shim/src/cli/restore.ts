import type { Context } from './context';
import { parseArgs, str, bool, requireId, FlagSpec } from './args';
import { restoreContainer } from '../runtime/checkpoint';

/** Flags of `restore` (runc's names; the console socket and lazy pages are not supported). */
export const RESTORE_FLAGS: FlagSpec[] = [
  { name: 'image-path', type: 'string' },
  { name: 'work-path', type: 'string' },
  { name: 'bundle', alias: 'b', type: 'string' },
  { name: 'detach', alias: 'd', type: 'bool' },
  { name: 'pid-file', type: 'string' },
  { name: 'tcp-established', type: 'bool' },
  { name: 'ext-unix-sk', type: 'bool' },
  { name: 'shell-job', type: 'bool' },
  { name: 'file-locks', type: 'bool' },
  { name: 'manage-cgroups-mode', type: 'string' },
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
  const id = requireId(p, 'restore');
  const r = await restoreContainer({
    store: ctx.store,
    id,
    imagePath: str(p, 'image-path'),
    workPath: str(p, 'work-path'),
    bundle: str(p, 'bundle'),
    detach: bool(p, 'detach'),
    pidFile: str(p, 'pid-file'),
    tcpEstablished: bool(p, 'tcp-established'),
    extUnixSk: bool(p, 'ext-unix-sk'),
    shellJob: bool(p, 'shell-job'),
    fileLocks: bool(p, 'file-locks'),
    manageCgroupsMode: str(p, 'manage-cgroups-mode'),
    warn: ctx.warn,
  });
  return r.exitCode;
}
