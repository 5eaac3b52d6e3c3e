/*
 * The protobuf message types of the shim API, loaded lazily from the JSON descriptor that
 * shim/proto/build-proto.js writes to build/proto/descriptors.json (protobufjs/light: no .proto
 * parser on the shim's path). Field names are the .proto names (snake_case): exec_id,
 * exit_status, exited_at, type_url.
 *
 *   const t = types();
 *   const req = decode(t.task.CreateTaskRequest, bytes);     // plain object, longs as numbers
 *   const out = encode(t.task.StateResponse, { id, pid, status: TaskStatus.RUNNING });
 *   const any = packMessage('containerd.events.TaskExit', { container_id, exited_at: timestamp(new Date()) });
 */
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs/light';

/** A message in plain-object form, keyed by .proto field names. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

/** A google.protobuf.Any in plain-object form (type_url is the bare full name for protobuf types). */
export interface AnyMsg {
  type_url: string;
  value: Uint8Array;
}

/** A google.protobuf.Timestamp in plain-object form. */
export interface TimestampMsg {
  seconds: number;
  nanos: number;
}

/** Message types by short name, one table per protobuf package. */
export type TypeTable = Record<string, protobuf.Type>;

/** Everything types() returns. */
export interface ProtoTypes {
  root: protobuf.Root;
  /** ttrpc: Request, Response, KeyValue, StringList. */
  ttrpc: TypeTable;
  /** google.rpc: Status. */
  rpc: TypeTable;
  /** google.protobuf: Any, Empty, Timestamp (and the other bundled well-known types). */
  protobuf: TypeTable;
  /** containerd.task.v2: every request/response of service Task. */
  task: TypeTable;
  /** containerd.task.v3: the same messages under the v3 package. */
  taskV3: TypeTable;
  /** containerd.types: Mount, Envelope. */
  types: TypeTable;
  /** containerd.v1.types: Process, ProcessInfo. */
  v1types: TypeTable;
  /** containerd.events: TaskCreate, TaskStart, TaskExit, TaskDelete, TaskOOM... */
  events: TypeTable;
  /** containerd.services.events.ttrpc.v1: ForwardRequest. */
  eventsService: TypeTable;
  /** containerd.runtime.bootstrap.v1: BootstrapParams, Extension, BootstrapResult. */
  bootstrap: TypeTable;
  /** containerd.runc.v1: Options, CheckpointOptions, ProcessDetails. */
  runc: TypeTable;
  /** runtimeoptions.v1: Options (CRI); cri.runtimeoptions.v1.Options is in root only. */
  cri: TypeTable;
  /** io.containerd.cgroups.v1: Metrics and its parts. */
  cgroupsV1: TypeTable;
  /** io.containerd.cgroups.v2: Metrics and its parts. */
  cgroupsV2: TypeTable;
}

/** containerd.v1.types.Status (StateResponse.status). */
export const TaskStatus = { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 } as const;

/** containerd.v1.types.ExitReason (TaskExit.exit_reason). */
export const ExitReason = { NONE: 0, OOMKILLED: 1, SIGNALED: 2 } as const;

/** Any type_url of the JSON OCI Process in ExecProcessRequest.spec. */
export const TYPE_URL_OCI_PROCESS = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
/** Any type_url of the JSON OCI LinuxResources in UpdateTaskRequest.resources. */
export const TYPE_URL_OCI_RESOURCES = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';
/** Prefix of the Any type URLs whose value is JSON rather than protobuf. */
const JSON_URL_PREFIX = 'types.containerd.io/';

/** Where the descriptor is read from: $SHOAL_PROTO_DESCRIPTORS, else build/proto/descriptors.json. */
export function descriptorPath(): string {
  return process.env.SHOAL_PROTO_DESCRIPTORS || path.join(__dirname, '..', '..', '..', 'proto', 'descriptors.json');
}

let cached: ProtoTypes | null = null;

type CodecFactory = (Writer: unknown, Reader: unknown, types: unknown[], util: unknown) => [unknown, unknown, unknown, unknown];

/** How many types got their codecs from build/proto/codecs.js (for tests). */
export let precompiledSetups = 0;

/**
 * Use the codecs that shim/proto/build-proto.js generated at build time (part of the bundle, so
 * in its code cache) instead of protobufjs generating and compiling them with new Function on
 * each type's first use, when they were made from this very descriptor text. Types without an
 * entry (the cgroup metrics) keep protobufjs' own setup.
 */
let precompiledInstalled = false;

function usePrecompiledCodecs(descriptorText: string): void {
  if (precompiledInstalled) return;
  precompiledInstalled = true;
  let mod: { textHash(s: string): number; descriptorHash: number; codecs: Record<string, CodecFactory> };
  try {
    mod = require('../../../proto/codecs');
  } catch {
    return; // a tree built without the codecs: protobufjs generates them
  }
  if (mod.descriptorHash !== mod.textHash(descriptorText)) return;
  const T = protobuf.Type.prototype as unknown as { setup(this: protobuf.Type): protobuf.Type };
  const original = T.setup;
  const wrappers = (protobuf as unknown as { wrappers: Record<string, { fromObject: unknown; toObject: unknown }> }).wrappers;
  T.setup = function setup(this: protobuf.Type) {
    const factory = mod.codecs[this.fullName];
    if (!factory) return original.call(this);
    const types = this.fieldsArray.map((f) => f.resolve().resolvedType);
    const util = protobuf.util;
    const [encode, decode, fromObject, toObject] = factory(protobuf.Writer, protobuf.Reader, types, util);
    const self = this as unknown as Record<string, unknown>;
    Object.assign(self, { encode, decode, fromObject, toObject });
    // Never used by the shim: generated by protobufjs if ever called.
    self.verify = (m: unknown) => ((self.verify = (protobuf as unknown as { verifier(t: protobuf.Type): (s: object) => (m: unknown) => unknown }).verifier(this)({ types, util })) as (m: unknown) => unknown)(m);
    // As protobufjs' setup: the well-known types with custom object conversion (Any).
    const wrapper = wrappers[this.fullName];
    if (wrapper) {
      const originalThis = Object.create(this);
      originalThis.fromObject = fromObject;
      self.fromObject = (wrapper.fromObject as (o: unknown) => unknown).bind(originalThis);
      originalThis.toObject = toObject;
      self.toObject = (wrapper.toObject as (m: unknown, o: unknown) => unknown).bind(originalThis);
    }
    precompiledSetups++;
    return this;
  };
}

/** Read the descriptor JSON; when it was never built, compile shim/proto with the build script. */
function loadDescriptor(): protobuf.INamespace {
  const file = descriptorPath();
  try {
    const text = fs.readFileSync(file, 'utf8');
    usePrecompiledCodecs(text);
    return JSON.parse(text) as protobuf.INamespace;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // A variable, not a literal: scripts/bundle.js must not pull the .proto parser into the shim.
  const script = path.join(__dirname, '..', '..', '..', '..', 'shim', 'proto', 'build-proto.js');
  if (!fs.existsSync(script)) throw new Error(`protobuf descriptors missing: ${file} (run node shim/proto/build-proto.js)`);
  return require(script).buildDescriptor() as protobuf.INamespace;
}

/** The message types directly inside one package namespace. */
function table(root: protobuf.Root, pkg: string): TypeTable {
  const ns = root.lookup(pkg);
  const out: TypeTable = {};
  if (ns instanceof protobuf.Namespace) {
    for (const t of ns.nestedArray) if (t instanceof protobuf.Type) out[t.name] = t;
  }
  return out;
}

/**
 * Packages added to the Root only when first used: task v3 (containerd 2.x) repeats v2, and the
 * cgroup metrics are large and only for Stats. Together they are over a third of the descriptor,
 * whose build was most of what a new shim daemon does before it can serve.
 */
const DEFERRED = ['containerd.task.v3', 'io.containerd.cgroups.v1', 'io.containerd.cgroups.v2'];
const deferred = new Map<string, protobuf.INamespace>();

/** Takes the DEFERRED packages out of the descriptor JSON (into `deferred`). */
function splitDeferred(json: protobuf.INamespace): void {
  for (const pkg of DEFERRED) {
    const parts = pkg.split('.');
    let ns: protobuf.INamespace | undefined = json;
    for (const p of parts.slice(0, -1)) ns = ns?.nested?.[p] as protobuf.INamespace | undefined;
    const leaf = parts[parts.length - 1];
    const body = ns?.nested?.[leaf] as protobuf.INamespace | undefined;
    if (!ns?.nested || !body) continue;
    deferred.set(pkg, body);
    delete ns.nested[leaf];
  }
}

/** Adds the deferred package that `name` (a package, type or service name) is in, if any. */
function ensurePackage(name: string): void {
  if (!deferred.size) return;
  const n = name.replace(/^\./, '');
  for (const [pkg, body] of deferred) {
    if (n !== pkg && !n.startsWith(`${pkg}.`)) continue;
    deferred.delete(pkg);
    types().root.define(pkg).addJSON(body.nested ?? {});
  }
}

/** Load (once) and return the message types. Throws if the descriptor cannot be found. */
export function types(): ProtoTypes {
  if (cached) return cached;
  // No resolveAll(): protobufjs resolves a type's fields when it is first used, and resolving
  // every type of the descriptors (the cgroup metrics are large) was ~9 ms of the daemon's start.
  const json = loadDescriptor();
  splitDeferred(json);
  const root = protobuf.Root.fromJSON(json);
  const lazy = (pkg: string) => {
    let t: TypeTable | undefined;
    return {
      get: () => (t ??= (ensurePackage(pkg), table(root, pkg))),
      enumerable: true,
    };
  };
  cached = Object.defineProperties(
    {
      root,
      ttrpc: table(root, 'ttrpc'),
      rpc: table(root, 'google.rpc'),
      protobuf: table(root, 'google.protobuf'),
      task: table(root, 'containerd.task.v2'),
      types: table(root, 'containerd.types'),
      v1types: table(root, 'containerd.v1.types'),
      events: table(root, 'containerd.events'),
      eventsService: table(root, 'containerd.services.events.ttrpc.v1'),
      bootstrap: table(root, 'containerd.runtime.bootstrap.v1'),
      runc: table(root, 'containerd.runc.v1'),
      cri: table(root, 'runtimeoptions.v1'),
    },
    { taskV3: lazy('containerd.task.v3'), cgroupsV1: lazy('io.containerd.cgroups.v1'), cgroupsV2: lazy('io.containerd.cgroups.v2') },
  ) as ProtoTypes;
  return cached;
}

/** A message type by full name ("containerd.events.TaskExit"), or null. */
export function lookupType(fullName: string): protobuf.Type | null {
  const root = types().root;
  ensurePackage(fullName);
  const t = root.lookup(fullName.replace(/^\./, ''));
  return t instanceof protobuf.Type ? t : null;
}

/**
 * Whether the descriptors define `service` with `method`, without adding a deferred package
 * (the ttrpc server registers the v3 handlers at start but builds their types on first call).
 */
export function hasMethod(service: string, method: string): boolean {
  const root = types().root;
  for (const [pkg, body] of deferred) {
    if (!service.startsWith(`${pkg}.`)) continue;
    const s = body.nested?.[service.slice(pkg.length + 1)] as { methods?: Record<string, unknown> } | undefined;
    return !!s?.methods && Object.prototype.hasOwnProperty.call(s.methods, method);
  }
  const s = root.lookup(service);
  return s instanceof protobuf.Service && !!s.methods[method];
}

/** Request and response types of one RPC ("containerd.task.v2.Task", "State"), or null. */
export function methodTypes(service: string, method: string): { request: protobuf.Type; response: protobuf.Type } | null {
  const root = types().root;
  ensurePackage(service);
  const s = root.lookup(service);
  if (!(s instanceof protobuf.Service)) return null;
  const m = s.methods[method];
  if (!m) return null;
  m.resolve();
  return { request: m.resolvedRequestType as protobuf.Type, response: m.resolvedResponseType as protobuf.Type };
}

/** Encode a plain object (numbers or Longs for 64-bit fields, enum numbers or names). */
export function encode(type: protobuf.Type, obj: Msg = {}): Uint8Array {
  return type.encode(type.fromObject(obj)).finish();
}

/** Options for {@link decode}: 64-bit integers as numbers, enums as numbers, zero values filled in. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, arrays: true };

/**
 * Decode bytes into a plain object with every scalar field present (proto3 zero values); unset
 * message fields are null, repeated fields [], maps {}, unset proto3 `optional` fields absent.
 * 64-bit values above 2^53 lose precision (use type.decode() directly to get Longs). Throws on
 * truncated input (protobufjs is lax about wrong wire types and clamps truncated strings).
 */
export function decode<T extends Msg = Msg>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), TO_OBJECT) as T;
}

/** An Any with the given type_url and already-encoded value. */
export function packAny(typeUrl: string, value: Uint8Array): AnyMsg {
  return { type_url: typeUrl, value };
}

/** Encode obj as the protobuf message fullName and wrap it in an Any (type_url = fullName). */
export function packMessage(fullName: string, obj: Msg): AnyMsg {
  const t = lookupType(fullName);
  if (!t) throw new Error(`unknown protobuf message ${fullName}`);
  return packAny(fullName, encode(t, obj));
}

/** Wrap a JSON value (an OCI Process, LinuxResources...) in an Any. */
export function packJson(typeUrl: string, value: unknown): AnyMsg {
  return packAny(typeUrl, Buffer.from(JSON.stringify(value)));
}

/** What unpackAny found: a decoded protobuf message, parsed JSON, or an unknown type. */
export interface Unpacked {
  typeUrl: string;
  /** The full message name (the type_url after its last '/'). */
  name: string;
  kind: 'proto' | 'json' | 'unknown';
  /** The decoded message (kind proto) or parsed JSON (kind json). */
  message?: Msg;
  value: Uint8Array;
}

/**
 * Open an Any: types.containerd.io/... URLs are JSON, any other URL is looked up by the name
 * after its last '/' among the loaded types. Throws on malformed JSON or protobuf bytes.
 */
export function unpackAny(any: AnyMsg | null | undefined): Unpacked | null {
  if (!any || !any.type_url) return null;
  const typeUrl = any.type_url;
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  const value = any.value ?? new Uint8Array(0);
  if (typeUrl.startsWith(JSON_URL_PREFIX)) {
    return { typeUrl, name, kind: 'json', message: JSON.parse(Buffer.from(value).toString('utf8')), value };
  }
  const t = lookupType(name);
  if (!t) return { typeUrl, name, kind: 'unknown', value };
  return { typeUrl, name, kind: 'proto', message: decode(t, value), value };
}

/** A Date (or epoch milliseconds) as a google.protobuf.Timestamp. */
export function timestamp(when: Date | number = new Date()): TimestampMsg {
  const ms = typeof when === 'number' ? when : when.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** A decoded Timestamp as a Date (null for an unset one). */
export function fromTimestamp(ts: { seconds?: unknown; nanos?: unknown } | null | undefined): Date | null {
  if (!ts) return null;
  return new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6));
}
