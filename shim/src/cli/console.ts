/* `run -t` / `exec -t` in the foreground: the pty master (received through the shim's
 * ConsoleSocket, shared with containerd-shim-shoal-v2) is proxied to this terminal. */
import * as fs from 'fs';
import { native } from '../native';

/**
 * Connect this terminal to the pty master until `done` resolves: raw mode on a tty stdin, input
 * to the master, master output to stdout, window size on SIGWINCH. Returns a function that
 * drains the remaining output and restores the terminal.
 */
export function proxyConsole(master: number): () => Promise<void> {
  const n = native();
  const stdin = process.stdin;
  const resize = () => {
    if (process.stdout.isTTY) n.setWinsize(master, process.stdout.rows, process.stdout.columns);
  };
  resize();
  process.on('SIGWINCH', resize);
  if (stdin.isTTY) stdin.setRawMode(true);
  const onData = (d: Buffer) => {
    try {
      fs.writeSync(master, d);
    } catch {
      /* the container side closed */
    }
  };
  stdin.on('data', onData);
  const out = fs.createReadStream('', { fd: master, autoClose: false, highWaterMark: 16384 });
  const ended = new Promise<void>((r) => {
    out.on('end', r);
    out.on('error', () => r()); // EIO once the last slave fd closed
  });
  out.pipe(process.stdout, { end: false });
  return async () => {
    await Promise.race([ended, new Promise((r) => setTimeout(r, 200))]);
    stdin.off('data', onData);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    process.off('SIGWINCH', resize);
    out.destroy();
    try {
      fs.closeSync(master);
    } catch {
      /* closed */
    }
  };
}
