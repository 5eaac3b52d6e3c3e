/*
 * Container images for the real-daemon tests (docker, containerd's ctr, podman), built from the
 * busybox rootfs of test/lib/rootfs.ts without any registry:
 *
 *   - `ociImageTar()`: an OCI image layout (oci-layout, index.json, blobs/sha256/...) packed as a
 *     tar, for `ctr images import` (the index carries `io.containerd.image.name`).
 *   - `rootfsTar()`: the plain rootfs as a tar, for `docker import` and `podman import`.
 *
 * Layer tars are written by the host's `tar` (numeric owner 0:0, sorted names, fixed mtime, so the
 * digests are reproducible); everything else (gzip, digests, JSON) is done here. Both tars are
 * built once per process into a temp dir removed at exit.
 */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { busyboxTemplate } from './rootfs';

/** Repository name used by the test images, without tag or registry. */
export const IMAGE_REPO = 'shoaltest';
/** Tag of the test images. */
export const IMAGE_TAG = 'latest';
/** Fully qualified name of the OCI image, as containerd stores it after `ctr images import`. */
export const OCI_IMAGE_NAME = `docker.io/library/${IMAGE_REPO}:${IMAGE_TAG}`;

/** Media types of the OCI image spec used in the layout. */
const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/** A content descriptor of the OCI image spec. */
interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

let workDir: string | undefined;

/** This process's scratch dir for image files, created on first use and removed at exit. */
function imageWorkDir(): string {
  if (workDir) return workDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-image-'));
  // World-readable: daemons and their helpers read the tars from here.
  fs.chmodSync(dir, 0o755);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return (workDir = dir);
}

/** `sha256:<hex>` of `data`. */
export function sha256Digest(data: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Packs directory `dir` as an uncompressed tar at `out` whose members are `./...` relative paths,
 * owned by 0:0, sorted, with a fixed mtime. Returns `out`.
 */
function tarDirectory(dir: string, out: string): string {
  execFileSync(
    'tar',
    ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', dir, '-cf', out, '.'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return out;
}

let cachedRootfsTar: string | undefined;

/**
 * Path of a plain tar of the busybox rootfs (for `docker import FILE name:tag` and
 * `podman import FILE name:tag`). Built once per process; callers must not modify it.
 */
export function rootfsTar(): string {
  if (cachedRootfsTar) return cachedRootfsTar;
  const out = path.join(imageWorkDir(), 'rootfs.tar');
  tarDirectory(busyboxTemplate(), out);
  fs.chmodSync(out, 0o644);
  return (cachedRootfsTar = out);
}

/** What `ociImageTar` built: the archive and the digests inside it, for assertions. */
export interface OciImage {
  /** Path of the OCI image layout tar. */
  tar: string;
  /** Name in the index annotation `io.containerd.image.name`. */
  name: string;
  /** Digest of the image manifest. */
  manifestDigest: string;
  /** Digest of the image config (the image id as docker and containerd report it). */
  configDigest: string;
  /** sha256 of the uncompressed layer (the config's rootfs.diff_ids[0]). */
  diffId: string;
}

let cachedOci: OciImage | undefined;

/**
 * Builds (once per process) an OCI image layout tar of the busybox rootfs: one gzip'ed layer,
 * a config (amd64/linux, Cmd ["sh"], PATH set, rootfs.diff_ids), a manifest, an index whose single
 * entry is annotated with `io.containerd.image.name` = OCI_IMAGE_NAME and
 * `org.opencontainers.image.ref.name` = IMAGE_TAG, and the `oci-layout` file. Import it with
 * `ctr images import <tar>`; the image is then called OCI_IMAGE_NAME.
 */
export function ociImageTar(): OciImage {
  if (cachedOci) return cachedOci;
  const work = imageWorkDir();
  const layout = path.join(work, 'oci-layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });

  const writeBlob = (data: Buffer, mediaType: string): Descriptor => {
    const digest = sha256Digest(data);
    fs.writeFileSync(path.join(blobs, digest.slice('sha256:'.length)), data);
    return { mediaType, digest, size: data.length };
  };

  const layerTar = fs.readFileSync(rootfsTar());
  const diffId = sha256Digest(layerTar);
  // gzip with a fixed header (no name, no mtime) so the blob digest is reproducible.
  const layer = writeBlob(zlib.gzipSync(layerTar, { level: 6 }), MT.layerGzip);

  const config = {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sh'],
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'shoal test/lib/image.ts: busybox rootfs' }],
  };
  const configDesc = writeBlob(Buffer.from(JSON.stringify(config)), MT.config);

  const manifest = { schemaVersion: 2, mediaType: MT.manifest, config: configDesc, layers: [layer] };
  const manifestDesc = writeBlob(Buffer.from(JSON.stringify(manifest)), MT.manifest);

  const index = {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: [
      {
        ...manifestDesc,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: {
          'io.containerd.image.name': OCI_IMAGE_NAME,
          'org.opencontainers.image.ref.name': IMAGE_TAG,
        },
      },
    ],
  };
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const tar = path.join(work, 'oci-image.tar');
  tarDirectory(layout, tar);
  fs.chmodSync(tar, 0o644);
  fs.rmSync(layout, { recursive: true, force: true });
  return (cachedOci = {
    tar,
    name: OCI_IMAGE_NAME,
    manifestDigest: manifestDesc.digest,
    configDigest: configDesc.digest,
    diffId,
  });
}
