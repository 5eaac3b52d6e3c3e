import type { Context } from './context';
import { str, bool, requireId, FlagSpec, Parsed } from './args';
import type { CriuCommonOptions } from '../runtime/checkpoint';

/** The flags `checkpoint` and `restore` share (runc's names, CRIU's options). */
export const CRIU_FLAGS: FlagSpec[] = [
  { name: 'image-path', type: 'string' },
  { name: 'work-path', type: 'string' },
  { name: 'tcp-established', type: 'bool' },
  { name: 'ext-unix-sk', type: 'bool' },
  { name: 'shell-job', type: 'bool' },
  { name: 'file-locks', type: 'bool' },
  { name: 'manage-cgroups-mode', type: 'string' },
];

/** The shared CRIU options of a parsed `checkpoint` or `restore` command line, with the id. */
export function criuOptions(ctx: Context, p: Parsed, command: string): CriuCommonOptions {
  return {
    store: ctx.store,
    id: requireId(p, command),
    imagePath: str(p, 'image-path'),
    workPath: str(p, 'work-path'),
    tcpEstablished: bool(p, 'tcp-established'),
    extUnixSk: bool(p, 'ext-unix-sk'),
    shellJob: bool(p, 'shell-job'),
    fileLocks: bool(p, 'file-locks'),
    manageCgroupsMode: str(p, 'manage-cgroups-mode'),
    warn: ctx.warn,
  };
}
