import type { Context } from './context';
import { parseArgs, bool, requireId } from './args';
import { killContainer, parseSignal } from '../runtime/kill';

/** `shoal kill [--all] ID [SIGNAL]`: SIGNAL by number, NAME or SIGNAME; default SIGTERM. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', alias: 'a', type: 'bool' }], { interspersed: true });
  const id = requireId(p, 'kill');
  await killContainer(ctx.store, id, parseSignal(p.args[1]), bool(p, 'all'));
  return 0;
}
