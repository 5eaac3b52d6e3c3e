/**
 * The full, ordered list of conformance cases, one module per area.
 */
import { Case } from '../context';
import { lifecycleCases } from './lifecycle';

/** Every case, in TAP order. */
export function allCases(): Case[] {
  return [...lifecycleCases];
}
