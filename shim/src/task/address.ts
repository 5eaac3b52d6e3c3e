/*
 * Where a container's shim listens, computed exactly as containerd-shim-runc-v2 does and as the C
 * launcher (native/launcher/group.c) does on its fast path: the group is the annotation
 * `io.containerd.runc.v2.group`, then `io.kubernetes.cri.sandbox-id`, else the container id; the
 * socket is /run/containerd/s/<hex sha256(filepath.Join(grpcAddress, namespace, group))>.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** The directory of every shim socket (mode 0700); paths stay under the 108-byte sun_path limit. */
export const SOCKET_DIR = '/run/containerd/s';

/** Annotations naming a shim group, strongest first. */
export const GROUP_ANNOTATIONS = ['io.containerd.runc.v2.group', 'io.kubernetes.cri.sandbox-id'] as const;

/** The group name used by every container of a namespace with SHOAL_SHIM_GROUPING=namespace. */
export const NAMESPACE_GROUP = 'shoal-namespace';

/** Go's filepath.Clean: no duplicate slashes, "." and ".." resolved, no trailing slash. */
export function goClean(p: string): string {
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else {
      out.push(seg);
    }
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** The group of a container from its config.json annotations (null when none is set). */
export function groupFromAnnotations(annotations: Record<string, unknown> | undefined | null): string | null {
  for (const key of GROUP_ANNOTATIONS) {
    const v = annotations?.[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  return null;
}

/**
 * The group of container `id` whose bundle is `bundle`, i.e. which shim process serves it:
 * runc's group annotation, else the Kubernetes sandbox id, else the whole namespace — one shim
 * for every container of a namespace is what makes shoal's per-container memory small.
 * SHOAL_SHIM_GROUPING=namespace forces one shim per namespace; =container falls back to the
 * container id instead (runc's one shim per container).
 */
export function groupId(id: string, bundle: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHOAL_SHIM_GROUPING === 'namespace') return NAMESPACE_GROUP;
  const fallback = env.SHOAL_SHIM_GROUPING === 'container' ? id : NAMESPACE_GROUP;
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    return groupFromAnnotations(spec?.annotations) ?? fallback;
  } catch {
    return fallback;
  }
}

/** The socket path (no scheme) of group `group` of namespace `ns` under containerd `address`. */
export function socketPath(address: string, ns: string, group: string): string {
  const digest = createHash('sha256').update(goClean(`${address}/${ns}/${group}`)).digest('hex');
  return `${SOCKET_DIR}/${digest}`;
}

/** The address containerd dials: `unix://` + the socket path (never an abstract socket). */
export function socketAddress(address: string, ns: string, group: string): string {
  return `unix://${socketPath(address, ns, group)}`;
}

/** The path of a `unix://` address, rejecting anything else (abstract sockets, CVE-2020-15257). */
export function addressPath(address: string): string {
  if (!address.startsWith('unix:///')) throw new Error(`not a unix socket address: ${address}`);
  return address.slice('unix://'.length);
}
