/*
 * The lifecycle of a shim process (a container's init or an exec), after containerd's runc shim:
 * created -> running <-> paused, any live state -> stopped on exit, created|stopped -> deleted.
 * Every operation is checked against the current state and an illegal one fails with
 * "cannot <op> task in <state> state" (FailedPrecondition over ttrpc).
 */
import { ShoalError } from '../runtime/errors';

/** The states of a shim process. */
export type ProcState = 'created' | 'running' | 'paused' | 'stopped' | 'deleted';

/** The operations a state may allow; `exit` is the process exiting, never refused. */
export type ProcOp = 'start' | 'kill' | 'delete' | 'pause' | 'resume' | 'exec' | 'resize' | 'closeIO' | 'update' | 'exit';

/** For each state, the allowed operations and the state each one leads to. */
const TABLE: Record<ProcState, Partial<Record<ProcOp, ProcState>>> = {
  created: { start: 'running', kill: 'created', delete: 'deleted', exec: 'created', resize: 'created', closeIO: 'created', update: 'created', exit: 'stopped' },
  running: { kill: 'running', pause: 'paused', exec: 'running', resize: 'running', closeIO: 'running', update: 'running', exit: 'stopped' },
  paused: { kill: 'paused', resume: 'running', resize: 'paused', closeIO: 'paused', update: 'paused', exit: 'stopped' },
  stopped: { delete: 'deleted', closeIO: 'stopped', exit: 'stopped' },
  deleted: { exit: 'deleted' },
};

/** Whether `op` is allowed in `state`. */
export function allowed(state: ProcState, op: ProcOp): boolean {
  return TABLE[state][op] !== undefined;
}

/** The state after `op`, or an INVALID_STATE error "cannot <op> task in <state> state". */
export function next(state: ProcState, op: ProcOp): ProcState {
  const to = TABLE[state][op];
  if (to === undefined) throw new ShoalError('INVALID_STATE', `cannot ${op} task in ${state} state`);
  return to;
}

/** The containerd.task.v2 Status enum value of a state (deleted reports as STOPPED). */
export function statusCode(state: ProcState): number {
  switch (state) {
    case 'created':
      return 1;
    case 'running':
      return 2;
    case 'paused':
      return 4;
    default:
      return 3;
  }
}
