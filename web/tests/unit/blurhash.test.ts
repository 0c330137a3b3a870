import { decode, encode } from "blurhash";
import { describe, expect, it } from "vitest";

import { blurhashAverageColor, blurhashDataUrl, isValidBlurhash, placeholderSize, rgbaToBmp } from "@/lib/blurhash";

const HASH = "LeEd?BogfQjcFlkBazaxs:oefPay";

function bytesOf(dataUrl: string): Uint8Array {
  const b64 = dataUrl.split(",")[1] ?? "";
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

describe("placeholderSize", () => {
  it("keeps the aspect ratio with the longest side at 32", () => {
    expect(placeholderSize(1024, 1024)).toEqual({ width: 32, height: 32 });
    expect(placeholderSize(1920, 1080)).toEqual({ width: 32, height: 18 });
    expect(placeholderSize(64, 96)).toEqual({ width: 21, height: 32 });
    expect(placeholderSize(10000, 10)).toEqual({ width: 32, height: 1 });
  });

  it("falls back to a square for missing sizes", () => {
    expect(placeholderSize(0, 0)).toEqual({ width: 32, height: 32 });
    expect(placeholderSize(Number.NaN, 5)).toEqual({ width: 32, height: 32 });
  });
});

describe("isValidBlurhash", () => {
  it("accepts real hashes and refuses the rest", () => {
    expect(isValidBlurhash(HASH)).toBe(true);
    expect(isValidBlurhash("")).toBe(false);
    expect(isValidBlurhash("nope")).toBe(false);
    expect(isValidBlurhash(null)).toBe(false);
    expect(isValidBlurhash("LeEd?BogfQjcFlkBazaxs:oef")).toBe(false); // wrong length for its components
  });
});

describe("rgbaToBmp", () => {
  it("writes a 32-bit top-down BMP with BGRA pixels", () => {
    const pixels = new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 255, 255]); // red, blue
    const bmp = rgbaToBmp(pixels, 2, 1);
    const view = new DataView(bmp.buffer);
    expect(String.fromCharCode(bmp[0]!, bmp[1]!)).toBe("BM");
    expect(view.getUint32(2, true)).toBe(54 + 8);
    expect(view.getInt32(18, true)).toBe(2);
    expect(view.getInt32(22, true)).toBe(-1);
    expect(view.getUint16(28, true)).toBe(32);
    expect(Array.from(bmp.slice(54))).toEqual([0, 0, 255, 255, 255, 0, 0, 255]);
  });
});

describe("blurhashDataUrl", () => {
  it("decodes a hash to a small BMP data URL at the image's aspect ratio", () => {
    const url = blurhashDataUrl(HASH, 1920, 1080);
    expect(url).toMatch(/^data:image\/bmp;base64,/);
    const bytes = bytesOf(url!);
    const view = new DataView(bytes.buffer);
    expect(view.getInt32(18, true)).toBe(32);
    expect(view.getInt32(22, true)).toBe(-18);
    expect(bytes.length).toBe(54 + 32 * 18 * 4);
  });

  it("paints exactly the pixels the hash decodes to", () => {
    const bytes = bytesOf(blurhashDataUrl(HASH, 96, 64)!);
    const pixels = decode(HASH, 32, 21);
    for (const i of [0, 4 * 100, 4 * (32 * 21 - 1)]) {
      const o = 54 + i;
      expect([bytes[o + 2], bytes[o + 1], bytes[o]]).toEqual([pixels[i], pixels[i + 1], pixels[i + 2]]);
    }
  });

  it("knows the average colour the hash was made from", () => {
    const flat = new Uint8ClampedArray(8 * 8 * 4);
    for (let i = 0; i < flat.length; i += 4) flat.set([20, 200, 60, 255], i);
    expect(blurhashAverageColor(encode(flat, 8, 8, 4, 3))).toBe("#14c83c");
    expect(blurhashAverageColor("bad")).toBeNull();
  });

  it("is null for an invalid hash, and memoised for a valid one", () => {
    expect(blurhashDataUrl("garbage", 10, 10)).toBeNull();
    expect(blurhashDataUrl(HASH, 96, 96)).toBe(blurhashDataUrl(HASH, 96, 96));
  });
});
