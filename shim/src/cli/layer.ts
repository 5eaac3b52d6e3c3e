/**
 * `shoal layer add|ls|rm|gc`: manage the content-addressed layer store of memory sharing.
 *
 *   shoal layer [--store DIR] add DIR [--name N]   import every regular file of DIR
 *   shoal layer [--store DIR] ls [--format json]   layers, file counts and sizes
 *   shoal layer [--store DIR] rm NAME...           remove layers (objects stay until gc)
 *   shoal layer [--store DIR] gc                   remove unreferenced objects
 *
 * The store is --store, else $SHOAL_LAYER_STORE, else "layerStore" of /etc/shoal/config.json,
 * else /var/lib/shoal/layers.
 */
import type { Context } from './context';
import { parseArgs, str } from './args';
import { ShoalError } from '../runtime/errors';
import { openLayerStore, LayerStore } from '../layers/store';
import { stdout } from '../runtime/fdwrite';

const USAGE = 'usage: shoal layer [--store DIR] add DIR [--name N] | ls [--format json] | rm NAME... | gc';

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Layers with their file count, total size and the size no other layer shares. */
function describe(store: LayerStore): { name: string; created: string; files: number; size: number; uniqueSize: number }[] {
  const objects = store.objects();
  return store.list().map((l) => {
    const digests = new Map(l.files.map((f) => [f.digest, f.size]));
    let uniqueSize = 0;
    for (const [d, size] of digests) {
      const refs = objects[d]?.refs ?? 0;
      if (refs <= l.files.filter((f) => f.digest === d).length) uniqueSize += size;
    }
    return { name: l.name, created: l.created, files: l.files.length, size: l.files.reduce((s, f) => s + f.size, 0), uniqueSize };
  });
}

/** `shoal layer ...`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'store', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'format', alias: 'f', type: 'string' },
  ], { interspersed: true });
  const store = openLayerStore(str(p, 'store'));
  const [sub, ...args] = p.args;
  switch (sub) {
    case 'add': {
      if (args.length !== 1) throw new ShoalError('INVALID_ARGUMENT', USAGE);
      const before = new Set(Object.keys(store.objects()));
      const l = store.addDirectory(args[0], str(p, 'name'));
      const added = new Map(l.files.filter((f) => !before.has(f.digest)).map((f) => [f.digest, f.size]));
      const size = l.files.reduce((s, f) => s + f.size, 0);
      const newBytes = [...added.values()].reduce((s, n) => s + n, 0);
      stdout(`${l.name}: ${l.files.length} files, ${mib(size)}; ${added.size} new objects (${mib(newBytes)}), the rest deduplicated\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const rows = describe(store);
      if (str(p, 'format') === 'json') {
        stdout(JSON.stringify(rows) + '\n');
        return 0;
      }
      stdout(`${'NAME'.padEnd(28)} ${'FILES'.padStart(7)} ${'SIZE'.padStart(12)} ${'UNIQUE'.padStart(12)}  CREATED\n`);
      for (const r of rows) {
        stdout(`${r.name.padEnd(28)} ${String(r.files).padStart(7)} ${mib(r.size).padStart(12)} ${mib(r.uniqueSize).padStart(12)}  ${r.created}\n`);
      }
      return 0;
    }
    case 'rm':
    case 'remove': {
      if (!args.length) throw new ShoalError('INVALID_ARGUMENT', USAGE);
      for (const n of args) store.remove(n);
      return 0;
    }
    case 'gc': {
      const r = store.gc();
      stdout(`removed ${r.removed.length} objects (${mib(r.freedBytes)})${r.deadUsers.length ? `, forgot ${r.deadUsers.length} dead container(s)` : ''}\n`);
      return 0;
    }
    default:
      void ctx;
      throw new ShoalError('INVALID_ARGUMENT', USAGE);
  }
}
