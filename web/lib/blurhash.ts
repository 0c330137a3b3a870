/**
 * BlurHash placeholders as tiny images: decoded to pixels and written as an uncompressed BMP
 * data URL. Pure (no canvas, no DOM), so it works during server rendering, in tests, and
 * paints on the very first frame, before the real (presigned) image arrives.
 */
import { decode, isBlurhashValid } from "blurhash";

/** The longest side of a decoded placeholder: a blur needs few pixels; CSS scales it up. */
export const PLACEHOLDER_MAX_SIDE = 32;

/** Placeholder dimensions with the image's aspect ratio, the longest side `maxSide`. */
export function placeholderSize(width: number, height: number, maxSide: number = PLACEHOLDER_MAX_SIDE): { width: number; height: number } {
  if (!(width > 0) || !(height > 0)) return { width: maxSide, height: maxSide };
  const scale = maxSide / Math.max(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

export function isValidBlurhash(hash: string | null | undefined): hash is string {
  return typeof hash === "string" && hash.length >= 6 && isBlurhashValid(hash).result;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * A 32-bit BMP (BGRA rows, top-down) of RGBA pixels: every browser decodes it, and it is
 * simple enough to write by hand in a few lines.
 */
export function rgbaToBmp(pixels: Uint8ClampedArray, width: number, height: number): Uint8Array {
  const header = 14 + 40;
  const size = header + width * height * 4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = 0x42; // "B"
  out[1] = 0x4d; // "M"
  view.setUint32(2, size, true);
  view.setUint32(10, header, true);
  view.setUint32(14, 40, true); // BITMAPINFOHEADER
  view.setInt32(18, width, true);
  view.setInt32(22, -height, true); // negative: rows top to bottom
  view.setUint16(26, 1, true); // planes
  view.setUint16(28, 32, true); // bits per pixel
  view.setUint32(30, 0, true); // BI_RGB
  view.setUint32(34, width * height * 4, true);
  for (let i = 0, o = header; i < width * height * 4; i += 4, o += 4) {
    out[o] = pixels[i + 2] ?? 0;
    out[o + 1] = pixels[i + 1] ?? 0;
    out[o + 2] = pixels[i] ?? 0;
    out[o + 3] = 255;
  }
  return out;
}

const cache = new Map<string, string | null>();
const CACHE_LIMIT = 500;

/**
 * A data URL showing the BlurHash at the image's aspect ratio, or null when the hash is not
 * valid (the caller then shows a neutral placeholder). Results are memoised: a gallery re-renders
 * often and the same hash always decodes to the same picture.
 */
export function blurhashDataUrl(hash: string | null | undefined, width: number, height: number): string | null {
  if (!isValidBlurhash(hash)) return null;
  const size = placeholderSize(width, height);
  const key = `${hash}:${size.width}x${size.height}`;
  const known = cache.get(key);
  if (known !== undefined) return known;
  let url: string | null;
  try {
    const pixels = decode(hash, size.width, size.height);
    url = `data:image/bmp;base64,${base64(rgbaToBmp(pixels, size.width, size.height))}`;
  } catch {
    url = null;
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, url);
  return url;
}

/** The average colour of a BlurHash (its DC component) as `#rrggbb`, or null. */
export function blurhashAverageColor(hash: string | null | undefined): string | null {
  if (!isValidBlurhash(hash)) return null;
  const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
  let value = 0;
  for (const c of hash.slice(2, 6)) value = value * 83 + chars.indexOf(c);
  return `#${value.toString(16).padStart(6, "0")}`;
}
