/**
 * `shoal gen --out BUNDLE [--include PATH]... [--env K=V]... [--store DIR] [--layer NAME] -- APP ARGS...`:
 * write an image-less bundle for a host program: a rootfs skeleton and a config.json that
 * bind-mounts the program's ELF dependency closure (and the included data) read-only.
 * `shoal run -b BUNDLE ID` then runs it. With --store the files go into a layer-store layer and
 * the bundle mounts the store's objects.
 */
import type { Context } from './context';
import { parseArgs, str } from './args';
import { ShoalError } from '../runtime/errors';
import { generateBundle, formatSummary } from '../gen/bundle';
import { openLayerStore } from '../layers/store';
import { stdout } from '../runtime/fdwrite';

/** `shoal gen`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'out', alias: 'o', type: 'string' },
    { name: 'include', alias: 'i', type: 'list' },
    { name: 'env', alias: 'e', type: 'list' },
    { name: 'store', type: 'string' },
    { name: 'layer', type: 'string' },
  ]);
  const out = str(p, 'out');
  if (!out) throw new ShoalError('INVALID_ARGUMENT', 'usage: shoal gen --out BUNDLE [--include PATH]... [--store DIR] -- /path/to/app args...');
  const useStore = str(p, 'store') !== undefined || str(p, 'layer') !== undefined;
  const s = generateBundle({
    out,
    argv: p.args,
    include: (p.flags.include as string[] | undefined) ?? [],
    env: (p.flags.env as string[] | undefined) ?? [],
    store: useStore ? openLayerStore(str(p, 'store')) : undefined,
    layerName: str(p, 'layer'),
  });
  for (const m of s.missing) ctx.warn(`gen: library not found: ${m}`);
  stdout(formatSummary(s) + '\n');
  return 0;
}
