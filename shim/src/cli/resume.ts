import type { Context } from './context';
import { parseArgs, requireId } from './args';
import { setPaused } from '../runtime/pause';

/** `shoal resume ID...`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { interspersed: true });
  requireId(p, 'resume');
  for (const id of p.args) await setPaused(ctx.store, id, false);
  return 0;
}
