/** Content digests of files, in OCI form: "sha256:<64 hex>". */
import * as crypto from 'crypto';
import * as fs from 'fs';

const CHUNK = 1 << 20;
let buf: Buffer | undefined;

/** The sha256 digest ("sha256:<hex>") of a file's contents, read synchronously in 1 MiB chunks. */
export function digestFile(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  buf ??= Buffer.allocUnsafe(CHUNK);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${h.digest('hex')}`;
}

/** The hex part of a digest; throws on anything but a well-formed sha256 digest. */
export function digestHex(digest: string): string {
  const m = /^(?:sha256:)?([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`invalid digest ${JSON.stringify(digest)}`);
  return m[1];
}
