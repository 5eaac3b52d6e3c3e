import { spawnSync } from 'child_process';
import type { Context } from './context';
import { parseArgs, str, requireId } from './args';
import { containerPids } from '../runtime/pause';
import { ShoalError } from '../runtime/errors';
import { stdout } from '../runtime/fdwrite';

/**
 * `shoal ps [--format table|json] ID [ps options]`: json prints the pids; table runs the host's
 * `ps` (default `-ef`) and keeps the header and the container's rows, as runc does.
 */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'format', alias: 'f', type: 'string' }]);
  const id = requireId(p, 'ps');
  const pids = containerPids(ctx.store, id);
  const format = str(p, 'format') ?? 'table';
  if (format === 'json') {
    stdout(JSON.stringify(pids) + '\n');
    return 0;
  }
  if (format !== 'table') throw new ShoalError('INVALID_ARGUMENT', `invalid format option: ${format}`);
  const r = spawnSync('ps', p.args.length > 1 ? p.args.slice(1) : ['-ef'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new ShoalError('INTERNAL', `ps: ${r.error?.message ?? r.stderr}`);
  const lines = r.stdout.split('\n');
  const header = lines[0];
  const col = header.split(/\s+/).filter(Boolean).indexOf('PID');
  if (col < 0) throw new ShoalError('INVALID_ARGUMENT', "couldn't find PID field in ps output");
  const want = new Set(pids);
  const rows = lines.slice(1).filter((l) => want.has(Number(l.trim().split(/\s+/)[col])));
  stdout([header, ...rows].join('\n') + '\n');
  return 0;
}
