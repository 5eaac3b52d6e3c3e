import type { Context } from './context';
import { parseArgs, str, bool } from './args';
import { stateJson } from './state';
import { stdout } from '../runtime/fdwrite';

/** `shoal list [--format table|json] [-q]`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'format', alias: 'f', type: 'string' },
    { name: 'quiet', alias: 'q', type: 'bool' },
  ]);
  const rows: Record<string, unknown>[] = [];
  for (const id of ctx.store.list()) {
    try {
      rows.push(stateJson(ctx.store, ctx.store.load(id)));
    } catch {
      /* half-created or being deleted */
    }
  }
  if (bool(p, 'quiet')) {
    stdout(rows.map((r) => `${r.id}\n`).join(''));
  } else if (str(p, 'format') === 'json') {
    stdout(JSON.stringify(rows) + '\n');
  } else {
    const head = ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'];
    const table = [head, ...rows.map((r) => [r.id, r.pid, r.status, r.bundle, r.created, r.owner || 'root'].map(String))];
    const widths = head.map((_, i) => Math.max(...table.map((r) => r[i].length)));
    stdout(table.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd()).join('\n') + '\n');
  }
  return 0;
}
