import * as fs from 'fs';
import type { Context } from './context';
import { parseArgs, str, requireId, Parsed } from './args';
import type { LinuxResources } from '../../../spec/src/config';
import { updateContainer } from '../runtime/update';
import { ShoalError } from '../runtime/errors';

/** "64m", "1G", "512", "-1" -> bytes, as docker's units.RAMInBytes. */
export function parseBytes(v: string, flag: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new ShoalError('INVALID_ARGUMENT', `invalid value for --${flag}: ${v}`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2].toLowerCase() as '' | 'k'];
  return Math.floor(Number(m[1]) * mult);
}

function int(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new ShoalError('INVALID_ARGUMENT', `invalid value for --${name}: ${v}`);
  return Number(v);
}

const STRING_FLAGS = ['resources', 'r', 'memory', 'memory-reservation', 'memory-swap', 'kernel-memory', 'kernel-memory-tcp', 'cpu-shares', 'cpu-quota', 'cpu-period', 'cpu-rt-runtime', 'cpu-rt-period', 'cpu-idle', 'cpu-burst', 'cpuset-cpus', 'cpuset-mems', 'pids-limit', 'blkio-weight', 'l3-cache-schema', 'mem-bw-schema'];

/** `shoal update [--resources FILE|-] [--memory 64m --cpu-quota N --pids-limit N ...] ID`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    STRING_FLAGS.filter((n) => n !== 'r').map((name) => ({ name, alias: name === 'resources' ? 'r' : undefined, type: 'string' as const })),
  );
  const id = requireId(p, 'update');
  let r: LinuxResources = {};
  const file = str(p, 'resources');
  if (file) {
    try {
      r = JSON.parse(file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8')) as LinuxResources;
    } catch (e) {
      throw new ShoalError('INVALID_ARGUMENT', `--resources ${file}: ${(e as Error).message}`);
    }
  }
  const mem = (name: string) => (str(p, name) !== undefined ? parseBytes(str(p, name)!, name) : undefined);
  const memory = { limit: mem('memory'), reservation: mem('memory-reservation'), swap: mem('memory-swap'), kernel: mem('kernel-memory'), kernelTCP: mem('kernel-memory-tcp') };
  const cpu = {
    shares: int(p, 'cpu-shares'),
    quota: int(p, 'cpu-quota'),
    period: int(p, 'cpu-period'),
    realtimeRuntime: int(p, 'cpu-rt-runtime'),
    realtimePeriod: int(p, 'cpu-rt-period'),
    burst: int(p, 'cpu-burst'),
    idle: int(p, 'cpu-idle'),
    cpus: str(p, 'cpuset-cpus'),
    mems: str(p, 'cpuset-mems'),
  };
  const clean = <T extends object>(o: T): T | undefined => {
    const e = Object.entries(o).filter(([, v]) => v !== undefined);
    return e.length ? (Object.fromEntries(e) as T) : undefined;
  };
  const fromFlags: LinuxResources = {};
  const m = clean(memory);
  if (m) fromFlags.memory = m;
  const c = clean(cpu);
  if (c) fromFlags.cpu = c;
  const pids = int(p, 'pids-limit');
  if (pids !== undefined) fromFlags.pids = { limit: pids };
  const bw = int(p, 'blkio-weight');
  if (bw !== undefined) fromFlags.blockIO = { weight: bw };
  if (str(p, 'l3-cache-schema') || str(p, 'mem-bw-schema')) throw new ShoalError('UNSUPPORTED', 'Intel RDT is not supported');
  updateContainer(ctx.store, id, { ...r, ...fromFlags, memory: { ...r.memory, ...fromFlags.memory }, cpu: { ...r.cpu, ...fromFlags.cpu } } as LinuxResources);
  return 0;
}
