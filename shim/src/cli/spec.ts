import * as fs from 'fs';
import * as path from 'path';
import type { Context } from './context';
import { parseArgs, str, bool } from './args';
import { defaultSpec } from '../../../spec/src/default-spec';
import { ShoalError } from '../runtime/errors';

/** `shoal spec [--bundle DIR] [--rootless]`: write a default config.json. */
export async function run(_ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'bundle', alias: 'b', type: 'string' },
    { name: 'rootless', type: 'bool' },
  ]);
  const file = path.join(str(p, 'bundle') ?? '.', 'config.json');
  if (fs.existsSync(file)) throw new ShoalError('ALREADY_EXISTS', `File ${file} exists. Remove it first`);
  fs.writeFileSync(file, JSON.stringify(defaultSpec({ rootless: bool(p, 'rootless') }), null, '\t') + '\n');
  return 0;
}
