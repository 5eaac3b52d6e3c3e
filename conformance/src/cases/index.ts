/**
 * The full, ordered list of conformance cases, one module per area.
 */
import { Case } from '../context';
import { lifecycleCases } from './lifecycle';
import { processCases } from './process';
import { mountCases } from './mounts';
import { namespaceCases } from './namespaces';
import { deviceCases } from './devices';
import { cgroupCases } from './cgroups';
import { securityCases } from './security';
import { hookCases } from './hooks';
import { ioCases } from './io';

/** Every case, in TAP order. Names are unique (known-failures lists refer to them). */
export function allCases(): Case[] {
  const all = [...lifecycleCases, ...processCases, ...mountCases, ...namespaceCases, ...deviceCases,
    ...cgroupCases, ...securityCases, ...hookCases, ...ioCases];
  const seen = new Set<string>();
  for (const c of all) {
    if (seen.has(c.name)) throw new Error(`duplicate case name: ${c.name}`);
    seen.add(c.name);
  }
  return all;
}
