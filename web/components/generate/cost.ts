/**
 * What a generation costs before it starts, and whether the user can pay for it. Pure, so the
 * numbers shown next to the Generate button are unit-tested. Credits are held when the
 * generation starts and charged per delivered image; an image that is not delivered is not paid.
 */

export const MIN_IMAGES = 1;
export const MAX_IMAGES = 4;

export function clampImages(count: number): number {
  if (!Number.isFinite(count)) return MIN_IMAGES;
  return Math.min(MAX_IMAGES, Math.max(MIN_IMAGES, Math.round(count)));
}

/** Credits for `count` images at `pricePerImage` each (null while the price is unknown). */
export function generationCost(pricePerImage: number | null | undefined, count: number): number | null {
  if (pricePerImage === null || pricePerImage === undefined || !Number.isFinite(pricePerImage) || pricePerImage < 0) return null;
  return pricePerImage * clampImages(count);
}

export type Affordability =
  /** Price or balance not known yet: let the server decide (it checks anyway). */
  | { kind: "unknown"; cost: number | null }
  | { kind: "affordable"; cost: number; remaining: number }
  | { kind: "short"; cost: number; shortBy: number; affordableImages: number };

export function affordability(pricePerImage: number | null | undefined, count: number, available: number | null | undefined): Affordability {
  const cost = generationCost(pricePerImage, count);
  if (cost === null || available === null || available === undefined || !Number.isFinite(available)) return { kind: "unknown", cost };
  if (available >= cost) return { kind: "affordable", cost, remaining: available - cost };
  const price = pricePerImage ?? 0;
  const affordableImages = price > 0 ? Math.min(MAX_IMAGES, Math.max(0, Math.floor(available / price))) : MAX_IMAGES;
  return { kind: "short", cost, shortBy: cost - Math.max(0, available), affordableImages };
}

/** One line for the cost summary: "2 images × 4 credits = 8 credits". */
export function costLine(pricePerImage: number, count: number): string {
  const n = clampImages(count);
  const total = pricePerImage * n;
  return `${n} image${n === 1 ? "" : "s"} × ${pricePerImage} credit${pricePerImage === 1 ? "" : "s"} = ${total} credit${total === 1 ? "" : "s"}`;
}
