import { constants } from 'os';

let names: Map<number, string> | null = null;

/** errno number -> symbolic name ("EPERM"), falling back to "errno N". */
export function errnoName(n: number): string {
  if (!names) {
    names = new Map();
    for (const [k, v] of Object.entries(constants.errno)) if (!names.has(v)) names.set(v, k);
  }
  return names.get(n) ?? `errno ${n}`;
}
