/*
 * The console socket of a terminal process: a unix socket in a private temp dir that the
 * shoal-init helper connects to, sending the pty master over SCM_RIGHTS (the runc
 * --console-socket protocol). The helper sends it before reporting READY (init) or before the
 * exec'd process runs, so once the engine returned, the message is waiting on the connection.
 */
import * as fs from 'fs';
import type * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { native } from '../native';
import { ShoalError } from '../runtime/errors';

/** How long to wait for the helper's message after the engine returned. */
const RECV_TIMEOUT_MS = 5000;

/** A listening console socket; `receive()` yields the pty master fd. */
export class ConsoleSocket {
  private conn: Promise<net.Socket>;

  private constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly server: net.Server,
  ) {
    this.conn = new Promise((resolve) => server.once('connection', resolve));
  }

  /** Creates the socket (mode 0700 dir under the temp dir) and starts listening. */
  static async listen(): Promise<ConsoleSocket> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-pty-'));
    const sock = path.join(dir, 'pty.sock');
    // pauseOnConnect: Node must not read the message itself (it would drop the fd).
    // net (and the stream modules it pulls in, ~3 ms) is loaded only here: `run` and `exec`
    // import this module but most of them never open a console.
    const { createServer } = require('net') as typeof net;
    const server = createServer({ pauseOnConnect: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(sock, () => resolve());
      });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new ConsoleSocket(sock, dir, server);
  }

  /** The pty master sent by the helper (CLOEXEC, owned by the caller). */
  async receive(): Promise<number> {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new ShoalError('INTERNAL', 'no pty master received on the console socket')), RECV_TIMEOUT_MS).unref(),
    );
    const conn = await Promise.race([this.conn, timeout]);
    const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
    const deadline = Date.now() + RECV_TIMEOUT_MS;
    try {
      for (;;) {
        try {
          return native().recvFd(fd).fd;
        } catch (e) {
          // libuv made the accepted socket non-blocking: the message may still be in flight.
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 2));
        }
      }
    } finally {
      conn.destroy();
    }
  }

  /** Stops listening and removes the socket and its directory. */
  close(): void {
    this.server.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
