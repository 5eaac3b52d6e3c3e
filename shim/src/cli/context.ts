import * as fs from 'fs';
import { StateStore } from '../runtime/state';
import { stderr } from '../runtime/fdwrite';
import { isoTime } from '../runtime/time';

/** Global flags and the logger every subcommand gets. */
export interface Context {
  root: string;
  store: StateStore;
  logFile?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  /** Print to stderr and append to --log (as {"level","msg","time"} with --log-format json). */
  log(level: 'error' | 'warning' | 'info' | 'debug', msg: string): void;
  warn(msg: string): void;
}

/** Build the context from the parsed global flags. */
export function makeContext(g: { root?: string; log?: string; logFormat?: string; debug?: boolean; systemdCgroup?: boolean }): Context {
  const root = g.root ?? '/run/shoal';
  const logFormat = g.logFormat === 'json' ? 'json' : 'text';
  const ctx: Context = {
    root,
    store: new StateStore(root),
    logFile: g.log,
    logFormat,
    debug: !!g.debug,
    systemdCgroup: !!g.systemdCgroup,
    log(level, msg) {
      if (level === 'debug' && !ctx.debug) return;
      if (level === 'error' || level === 'warning') stderr(`shoal: ${level === 'warning' ? 'warning: ' : ''}${msg}\n`);
      if (!ctx.logFile) return;
      const time = isoTime();
      const line = logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
      try {
        fs.appendFileSync(ctx.logFile, line + '\n');
      } catch {
        /* an unwritable log must not hide the real error */
      }
    },
    warn(msg) {
      ctx.log('warning', msg);
    },
  };
  return ctx;
}
