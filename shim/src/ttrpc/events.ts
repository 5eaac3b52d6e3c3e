/*
 * Task events to containerd: each event is a containerd.events.* message packed in an Any
 * (type_url = bare full name, e.g. "containerd.events.TaskExit"), put in an Envelope with its
 * topic, namespace and timestamp, and sent as ForwardRequest to
 * containerd.services.events.ttrpc.v1.Events/Forward on $TTRPC_ADDRESS. EventPublisher keeps
 * them in order (TaskExit must reach containerd before TaskDelete) and retries on reconnect.
 */
import { TtrpcClient } from './client';
import { encode, packMessage, timestamp, types, type Msg } from './proto';

/** Full name of containerd's event service. */
export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

/** containerd.events message name -> topic. */
export const EVENT_TOPICS = {
  TaskCreate: '/tasks/create',
  TaskStart: '/tasks/start',
  TaskDelete: '/tasks/delete',
  TaskExit: '/tasks/exit',
  TaskOOM: '/tasks/oom',
  TaskExecAdded: '/tasks/exec-added',
  TaskExecStarted: '/tasks/exec-started',
  TaskPaused: '/tasks/paused',
  TaskResumed: '/tasks/resumed',
  TaskCheckpointed: '/tasks/checkpointed',
} as const;

/** The short name of a task event message ("TaskExit"). */
export type TaskEventName = keyof typeof EVENT_TOPICS;

/** The encoded ForwardRequest for one event (fields of `event` use the .proto names). */
export function forwardRequest(namespace: string, name: TaskEventName, event: Msg, when: Date = new Date()): Uint8Array {
  const topic = EVENT_TOPICS[name];
  if (!topic) throw new Error(`unknown task event ${name}`);
  const envelope = { timestamp: timestamp(when), namespace, topic, event: packMessage(`containerd.events.${name}`, event) };
  return encode(types().eventsService.ForwardRequest, { envelope });
}

/** Options of EventPublisher. */
export interface PublisherOptions {
  /** Attempts per event before it is dropped (default 5, as containerd's shim). */
  attempts?: number;
  /** Per-call timeout (default 5 s). */
  timeoutMs?: number;
  /** Log for dropped events; default stderr. */
  log?(message: string): void;
}

/** A queued event. */
interface Queued {
  payload: Uint8Array;
  what: string;
  resolve(): void;
  reject(err: Error): void;
}

/** Publishes events one at a time, in order, over one (re)connected ttrpc client. */
export class EventPublisher {
  private client: TtrpcClient | null = null;
  private readonly queue: Queued[] = [];
  private running = false;
  private closed = false;

  /** @param address $TTRPC_ADDRESS (a path or unix:// URL). */
  constructor(
    private readonly address: string,
    private readonly options: PublisherOptions = {},
  ) {}

  /** Queue an event; resolves once containerd accepted it, rejects once it was dropped. */
  publish(namespace: string, name: TaskEventName, event: Msg, when: Date = new Date()): Promise<void> {
    if (this.closed) return Promise.reject(new Error('event publisher closed'));
    let payload: Uint8Array;
    try {
      payload = forwardRequest(namespace, name, event, when);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ payload, what: `${EVENT_TOPICS[name]} ${JSON.stringify(event.container_id ?? '')}`, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Events waiting to be sent. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stop: queued events are rejected, the connection closed. */
  close(): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new Error('event publisher closed'));
    this.client?.close();
    this.client = null;
  }

  private async drain(): Promise<void> {
    this.running = true;
    const attempts = this.options.attempts ?? 5;
    while (this.queue.length && !this.closed) {
      const q = this.queue[0];
      let lastErr: Error | null = null;
      for (let i = 0; i < attempts && !this.closed; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
        try {
          if (!this.client || this.client.closed) this.client = await TtrpcClient.connect(this.address, { timeoutMs: 5000 });
          await this.client.call(EVENTS_SERVICE, 'Forward', q.payload, { timeoutMs: this.options.timeoutMs ?? 5000 });
          lastErr = null;
          break;
        } catch (err) {
          lastErr = err as Error;
          if (this.client?.closed) this.client = null;
        }
      }
      if (this.queue[0] !== q) continue; // close() emptied the queue
      this.queue.shift();
      if (lastErr) {
        (this.options.log ?? ((m: string) => process.stderr.write(`${m}\n`)))(`dropping event ${q.what}: ${lastErr.message}`);
        q.reject(lastErr);
      } else {
        q.resolve();
      }
    }
    this.running = false;
  }
}
