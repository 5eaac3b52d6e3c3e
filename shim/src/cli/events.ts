/*
 * `shoal events [--stats] [--interval 5s] ID`: runc's events command. Prints one JSON object per
 * line: a stats event every --interval (default 5s) and an {"type":"oom"} event for each OOM kill,
 * until the container stops; with --stats, a single stats event and exit.
 */
import type { Context } from './context';
import { parseArgs, requireId, str, bool } from './args';
import { streamEvents } from '../runtime/events';
import { ShoalError } from '../runtime/errors';

/** A Go-style duration ("5s", "500ms", "1m30s", "2h") in milliseconds; plain numbers are seconds. */
export function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  while (rest.length) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new ShoalError('INVALID_ARGUMENT', `invalid value "${text}" for flag -interval: parse error`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  if (!text.length || total <= 0) throw new ShoalError('INVALID_ARGUMENT', `invalid value "${text}" for flag -interval: duration must be greater than 0`);
  return total;
}

/** `shoal events`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'stats', type: 'bool' },
    { name: 'interval', type: 'string' },
  ]);
  const id = requireId(p, 'events');
  const intervalMs = parseDuration(str(p, 'interval') ?? '5s');
  await streamEvents(ctx.store, id, {
    stats: bool(p, 'stats'),
    intervalMs,
    emit: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
  });
  return 0;
}
