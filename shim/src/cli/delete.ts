import type { Context } from './context';
import { parseArgs, bool, requireId } from './args';
import { deleteContainer } from '../runtime/delete';

/** `shoal delete [--force] ID...`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', alias: 'f', type: 'bool' }], { interspersed: true });
  requireId(p, 'delete');
  for (const id of p.args) await deleteContainer(ctx.store, id, bool(p, 'force'), ctx.warn);
  return 0;
}
