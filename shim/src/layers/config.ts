/**
 * Host-wide settings of memory sharing: /etc/shoal/config.json (optional; path overridable with
 * SHOAL_CONFIG), read at most once per process, e.g. {"share": "libs", "layerStore": "/srv/l"}.
 * Also the annotation names and the cheap "is sharing requested at all" check `create` calls
 * before loading anything else of layers/.
 */
import * as fs from 'fs';

/** Annotation selecting automatic sharing: "libs", "all" or "off". */
export const ANN_SHARE = 'org.shoal.share';
/** Annotation listing explicit store layers to mount: JSON or "name:/path,name2:/path2". */
export const ANN_LAYERS = 'org.shoal.layers';
/** Annotation choosing what happens on a writable rootfs: "ro" (default) or "skip". */
export const ANN_WRITABLE = 'org.shoal.share.writable';
/** Annotation of comma-separated rootfs paths (or directory prefixes) never to share. */
export const ANN_EXCLUDE = 'org.shoal.share.exclude';

/** The default store location when neither --store, SHOAL_LAYER_STORE nor the config sets it. */
export const DEFAULT_STORE = '/var/lib/shoal/layers';

/** The host config file's fields shoal understands. */
export interface ShoalConfig {
  /** Default sharing mode for containers without the org.shoal.share annotation. */
  share?: 'libs' | 'all' | 'off';
  /** Layer store directory. */
  layerStore?: string;
}

let cached: ShoalConfig | undefined;

/** The host config (memoized). A missing file is {}; an unreadable or invalid one is {} too. */
export function hostConfig(): ShoalConfig {
  if (cached) return cached;
  const file = process.env.SHOAL_CONFIG ?? '/etc/shoal/config.json';
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    cached = v && typeof v === 'object' ? (v as ShoalConfig) : {};
  } catch {
    cached = {};
  }
  return cached;
}

/** Forget the memoized config (tests). */
export function resetHostConfig(): void {
  cached = undefined;
}

/** The store directory: explicit argument, then SHOAL_LAYER_STORE, the config file, the default. */
export function storeDir(explicit?: string): string {
  return explicit || process.env.SHOAL_LAYER_STORE || hostConfig().layerStore || DEFAULT_STORE;
}

/** Normalize a share mode; null means sharing is off. Throws on an unknown value. */
export function parseShareMode(v: string | undefined): 'libs' | 'all' | null {
  if (v === undefined || v === '' || /^(off|none|false|no|0)$/i.test(v)) return null;
  if (v === 'libs' || v === 'all') return v;
  throw new Error(`${ANN_SHARE}: unknown value ${JSON.stringify(v)} (want libs, all or off)`);
}

/**
 * Whether a container with these annotations asks for sharing or explicit layers (directly or
 * through the host default). Cheap: create calls it before loading the rest of layers/.
 */
export function sharingRequested(annotations: Record<string, string> | undefined): boolean {
  const a = annotations ?? {};
  if (a[ANN_LAYERS]) return true;
  const mode = a[ANN_SHARE] ?? hostConfig().share;
  return mode !== undefined && !/^(off|none|false|no|0|)$/i.test(mode);
}
