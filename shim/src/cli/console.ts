import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { native } from '../native';
import { ShoalError } from '../runtime/errors';

/** A console socket shoal listens on itself, for `run -t` / `exec -t` in the foreground. */
export interface OwnConsole {
  path: string;
  /** Resolves with the pty master the container sends (its name travels as the data). */
  master: Promise<number>;
  close(): void;
}

/**
 * Listen on a unix socket in dir for the container's pty master. The connection is accepted
 * paused (Node must not read the message: the fd rides on it as SCM_RIGHTS) and the message is
 * taken with a non-blocking recvmsg, retried until it arrives — the init may first wait for the
 * runtime's hooks, so nothing here may block the event loop.
 */
export function listenConsole(dir: string): Promise<OwnConsole> {
  const sockPath = path.join(dir, `console-${process.pid}.sock`);
  fs.rmSync(sockPath, { force: true });
  let resolveMaster!: (fd: number) => void;
  let rejectMaster!: (e: Error) => void;
  const master = new Promise<number>((res, rej) => ((resolveMaster = res), (rejectMaster = rej)));
  master.catch(() => undefined);
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    const tryRecv = () => {
      try {
        const r = native().recvFd(fd);
        sock.destroy();
        resolveMaster(r.fd);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return void setTimeout(tryRecv, 2);
        sock.destroy();
        rejectMaster(new ShoalError('SETUP_FAILED', `console socket: ${code ?? (e as Error).message}`));
      }
    };
    tryRecv();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(sockPath, () =>
      resolve({
        path: sockPath,
        master,
        close: () => {
          server.close();
          fs.rmSync(sockPath, { force: true });
        },
      }),
    );
  });
}

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
