import type { Context } from './context';
import { parseArgs, requireId } from './args';
import { startContainer } from '../runtime/start';

/** `shoal start ID`: release a created container's process. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, []);
  await startContainer(ctx.store, requireId(p, 'start'), ctx.warn);
  return 0;
}
