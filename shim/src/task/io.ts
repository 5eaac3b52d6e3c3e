/*
 * A process's stdio, opened for the container. Where no copying is needed the container gets the
 * target itself: the stdout/stderr fifo opened write-only (a read-only handle is opened first, so
 * the open never blocks, and kept until the process exits, as runc's shim does), the file opened
 * O_APPEND, the logging binary's pipes. Stdin gets a pipe the shim feeds from the fifo, so that
 * CloseIO can end it. With a terminal the container's stdio is the pty: the shim copies the fifo
 * into the master and the master into stdout.
 */
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as tty from 'tty';
import type { Readable, Writable } from 'stream';
import { native } from '../native';
import type { StdioEntry } from '../runtime/helper';
import { IoTarget, parseStdio, StdioConfig } from './io-uri';

// libuv opens every file O_CLOEXEC: no fd of the shim leaks into a container by accident.
const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;

/** Identifies the container to a logging binary (env CONTAINER_ID, CONTAINER_NAMESPACE). */
export interface IoOwner {
  id: string;
  namespace: string;
  /** Owner given to the container's fifo and pipe ends (runc options io_uid/io_gid); 0 = root. */
  uid?: number;
  gid?: number;
}

/** How long a logging binary may take to close its ready pipe (fd 5). */
const LOGGER_READY_MS = 10_000;

/** The open stdio of one process. */
export class ProcessIo {
  /** What the helper passes to the container as fds 0, 1, 2. */
  readonly stdio: [StdioEntry, StdioEntry, StdioEntry] = ['ignore', 'ignore', 'ignore'];
  /** Fds handed to the container; the shim closes its copies once the process started. */
  private containerFds: number[] = [];
  /** Fds and streams kept until the process exits. */
  private keep: number[] = [];
  private streams: (Readable | Writable)[] = [];
  private stdinSource: net.Socket | null = null;
  private stdinSink: Writable | null = null;
  private loggers: ChildProcess[] = [];
  private pty: tty.ReadStream | null = null;
  private masterFd = -1;
  private outputDone: Promise<void> = Promise.resolve();

  constructor(readonly config: StdioConfig) {}

  /** Opens every stream; on failure everything opened so far is closed. */
  static async open(config: StdioConfig, owner: IoOwner): Promise<ProcessIo> {
    const io = new ProcessIo(config);
    try {
      await io.openAll(owner);
    } catch (e) {
      io.closeContainerEnds();
      await io.close();
      throw e;
    }
    return io;
  }

  private async openAll(owner: IoOwner): Promise<void> {
    const t = parseStdio(this.config);
    if (t.stdin.kind === 'fifo') {
      // O_RDWR: never blocks and never reads EOF before containerd opened its end; stdin ends
      // with CloseIO (containerd sends it when its own stdin hits EOF).
      const fd = fs.openSync(t.stdin.path, O_RDWR);
      this.stdinSource = new net.Socket({ fd, readable: true, writable: false });
      this.streams.push(this.stdinSource);
      if (!this.config.terminal) {
        const [r, w] = native().pipe();
        this.stdio[0] = r;
        this.containerFds.push(r);
        this.stdinSink = new net.Socket({ fd: w, readable: false, writable: true });
        this.stdinSource.pipe(this.stdinSink);
      }
    }
    if (this.config.terminal) return; // stdout is written from the pty in attachConsole
    const files = new Map<string, number>();
    for (const [i, target] of [[1, t.stdout], [2, t.stderr]] as const) {
      if (target.kind === 'fifo') this.stdio[i] = this.openFifoWriter(target.path, true);
      else if (target.kind === 'file') {
        // stdout and stderr usually name the same file: share one O_APPEND description.
        let fd = files.get(target.path);
        if (fd === undefined) files.set(target.path, (fd = openAppend(target.path)));
        if (!this.containerFds.includes(fd)) this.containerFds.push(fd);
        this.stdio[i] = fd;
      }
    }
    const bin = [t.stdout, t.stderr].find((x): x is Extract<IoTarget, { kind: 'binary' }> => x.kind === 'binary');
    if (bin) await this.startLogger(bin, owner);
    if (owner.uid || owner.gid) this.chownContainerEnds(owner.uid ?? 0, owner.gid ?? 0);
  }

  /** io_uid/io_gid: a non-root container user can reopen its stdio (/proc/self/fd/N, /dev/stdout). */
  private chownContainerEnds(uid: number, gid: number): void {
    for (const fd of this.containerFds) if (fs.fstatSync(fd).isFIFO()) fs.fchownSync(fd, uid, gid);
  }

  /** Opens a fifo for writing without blocking; `forContainer` hands the fd to the container. */
  private openFifoWriter(p: string, forContainer: boolean): number {
    this.keep.push(fs.openSync(p, O_RDONLY | O_NONBLOCK));
    const w = fs.openSync(p, O_WRONLY);
    if (forContainer) this.containerFds.push(w);
    return w;
  }

  /** Starts a logging binary: fd 3 stdout, fd 4 stderr, fd 5 closed by it once ready. */
  private async startLogger(bin: { path: string; args: string[] }, owner: IoOwner): Promise<void> {
    const n = native();
    const [outR, outW] = n.pipe();
    const [errR, errW] = n.pipe();
    const [readyR, readyW] = n.pipe();
    this.containerFds.push(outW, errW);
    this.stdio[1] = outW;
    this.stdio[2] = errW;
    let child: ChildProcess;
    try {
      child = spawn(bin.path, bin.args, {
        stdio: ['ignore', 'ignore', 'ignore', outR, errR, readyW],
        env: { CONTAINER_ID: owner.id, CONTAINER_NAMESPACE: owner.namespace },
        detached: true,
      });
    } finally {
      for (const fd of [outR, errR, readyW]) n.closeFd(fd);
    }
    this.loggers.push(child);
    const ready = new net.Socket({ fd: readyR, readable: true, writable: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`logging binary ${bin.path} not ready`)), LOGGER_READY_MS);
      child.once('error', (e) => (clearTimeout(timer), reject(e)));
      ready.on('data', () => undefined);
      ready.once('close', () => (clearTimeout(timer), resolve()));
    });
  }

  /** Takes the pty master received on the console socket and starts copying. */
  attachConsole(masterFd: number): void {
    const t = parseStdio(this.config);
    const pty = new tty.ReadStream(masterFd);
    this.pty = pty;
    this.masterFd = masterFd;
    if (this.stdinSource) this.stdinSource.pipe(pty as unknown as Writable, { end: false });
    let out: Writable | null = null;
    if (t.stdout.kind === 'fifo') out = new net.Socket({ fd: this.openFifoWriter(t.stdout.path, false), readable: false, writable: true });
    else if (t.stdout.kind === 'file') out = fs.createWriteStream('', { fd: openAppend(t.stdout.path) });
    this.outputDone = new Promise<void>((resolve) => {
      // The master reads EIO once every slave fd is closed: that is the end of the output.
      pty.on('error', () => pty.destroy());
      pty.once('close', () => (out ? out.end(resolve) : resolve()));
      if (out) {
        out.on('error', () => undefined);
        pty.pipe(out, { end: false });
      } else pty.resume();
    });
  }

  /** The pty master (for ResizePty), or -1 without a terminal. */
  get consoleFd(): number {
    return this.pty && !this.pty.destroyed ? this.masterFd : -1;
  }

  /** Closes the shim's copies of the fds given to the container (once the helper has them). */
  closeContainerEnds(): void {
    for (const fd of this.containerFds.splice(0)) safeClose(fd);
  }

  /** CloseIO: the process reads EOF on stdin. */
  closeStdin(): void {
    if (this.stdinSource) {
      this.stdinSource.unpipe();
      this.stdinSource.destroy();
      this.stdinSource = null;
    }
    if (this.stdinSink) {
      const sink = this.stdinSink;
      sink.on('error', () => undefined);
      sink.end(() => sink.destroy());
      this.stdinSink = null;
    }
  }

  /** After the process exited: lets the terminal output drain, then releases everything. */
  async close(): Promise<void> {
    this.closeStdin();
    await Promise.race([this.outputDone, new Promise((r) => setTimeout(r, 2000))]);
    this.pty?.destroy();
    for (const s of this.streams.splice(0)) s.destroy();
    for (const fd of this.keep.splice(0)) safeClose(fd);
  }
}

function openAppend(p: string): number {
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
  return fs.openSync(p, O_WRONLY | O_APPEND | O_CREAT, 0o644);
}

function safeClose(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
