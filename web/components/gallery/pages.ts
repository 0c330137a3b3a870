/**
 * The gallery's pure logic: cursor pages flattened into one list without duplicates, the
 * filters (model, favourites) in the URL and in the API query, when presigned URLs need
 * refreshing, and edits applied to every cached shape an image lives in. Unit-tested.
 */
import type { Schemas } from "@/lib/api/client";

export type Image = Schemas["Image"];
export type ImagePage = Schemas["ImagePage"];
export type Pages = { pages: ImagePage[]; pageParams: unknown[] };

export const PAGE_SIZE = 24;

/**
 * All images of the loaded pages, in order, each once. Pages are cursor-based and new images
 * arrive at the top while the user scrolls, so the same image can be on two pages: the first
 * occurrence wins (it is the newer copy, with fresher URLs, when pages were refetched in order).
 */
export function flattenImages(pages: readonly ImagePage[] | undefined): Image[] {
  if (!pages) return [];
  const seen = new Set<string>();
  const out: Image[] = [];
  for (const page of pages) {
    for (const image of page.images) {
      if (seen.has(image.id)) continue;
      seen.add(image.id);
      out.push(image);
    }
  }
  return out;
}

export type GalleryFilters = { modelId: string | null; favourites: boolean };

export const NO_FILTERS: GalleryFilters = { modelId: null, favourites: false };

/** Filters from the page URL: `?model=<id>&favourites=1`. */
export function filtersFromSearch(params: Pick<URLSearchParams, "get">): GalleryFilters {
  const model = params.get("model");
  const fav = params.get("favourites");
  return { modelId: model && model.length <= 64 ? model : null, favourites: fav === "1" || fav === "true" };
}

/** The URL's query with these filters (other parameters, like `image`, kept as they are). */
export function filtersToSearch(filters: GalleryFilters, base: string | URLSearchParams = ""): URLSearchParams {
  const params = new URLSearchParams(base);
  if (filters.modelId) params.set("model", filters.modelId);
  else params.delete("model");
  if (filters.favourites) params.set("favourites", "1");
  else params.delete("favourites");
  return params;
}

/** The `GET /v1/images` query for these filters (both are filtered by the server). */
export function imageQuery(filters: GalleryFilters, cursor?: string | null): { limit: number; model_id?: string; favourites?: boolean; cursor?: string } {
  return {
    limit: PAGE_SIZE,
    ...(filters.modelId ? { model_id: filters.modelId } : {}),
    ...(filters.favourites ? { favourites: true } : {}),
    ...(cursor ? { cursor } : {}),
  };
}

/** Whether an image belongs in a view with these filters (after a local edit, e.g. unfavourite). */
export function matchesFilters(image: Pick<Image, "model_id" | "favourite">, filters: GalleryFilters): boolean {
  if (filters.modelId && image.model_id !== filters.modelId) return false;
  if (filters.favourites && !image.favourite) return false;
  return true;
}

export function hasFilters(filters: GalleryFilters): boolean {
  return filters.modelId !== null || filters.favourites;
}

/** Re-read this long before presigned URLs expire (a minute, or a fifth of a short lifetime). */
export const EXPIRY_MARGIN_MS = 60_000;
const MIN_REFRESH_MS = 5_000;
const MAX_REFRESH_MS = 30 * 60_000;

/**
 * Milliseconds until the loaded URLs should be re-signed (a refetch): the earliest expiry minus
 * a margin, never less than a few seconds (a clock skew must not cause a refetch loop).
 * `false` when nothing is loaded (nothing can expire).
 */
export function refreshDelay(images: readonly Pick<Image, "urls_expire_at" | "created_at">[], now: number = Date.now()): number | false {
  let earliest = Infinity;
  for (const image of images) {
    const at = Date.parse(image.urls_expire_at);
    if (Number.isFinite(at) && at < earliest) earliest = at;
  }
  if (earliest === Infinity) return false;
  const left = earliest - now;
  const margin = Math.min(EXPIRY_MARGIN_MS, Math.max(0, left) / 5);
  return Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, left - margin));
}

function isImage(value: unknown): value is Image {
  return !!value && typeof value === "object" && "id" in value && "blurhash" in value && "urls_expire_at" in value;
}

function isImagePage(value: unknown): value is ImagePage {
  return !!value && typeof value === "object" && Array.isArray((value as ImagePage).images) && "next_cursor" in value;
}

function isPages(value: unknown): value is Pages {
  return !!value && typeof value === "object" && Array.isArray((value as Pages).pages) && (value as Pages).pages.every(isImagePage);
}

/**
 * Any cached shape an image lives in under the `["images", …]` keys (infinite pages, one page,
 * one image) with `change` applied to that image; `null` from `change` removes it. Unknown
 * shapes are returned as they are.
 */
export function updateImageIn<T>(data: T, id: string, change: (image: Image) => Image | null): T {
  const apply = (page: ImagePage): ImagePage => {
    if (!page.images.some((image) => image.id === id)) return page;
    const images: Image[] = [];
    for (const image of page.images) {
      if (image.id !== id) images.push(image);
      else {
        const next = change(image);
        if (next) images.push(next);
      }
    }
    return { ...page, images };
  };
  if (isPages(data)) return { ...data, pages: data.pages.map(apply) } as T;
  if (isImagePage(data)) return apply(data) as T;
  if (isImage(data) && data.id === id) return (change(data) ?? undefined) as T;
  return data;
}

/** The images before and after `id` in `list` (for the lightbox's previous/next). */
export function neighbours<T extends { id: string }>(list: readonly T[], id: string | null): { index: number; prev: T | null; next: T | null } {
  const index = id ? list.findIndex((item) => item.id === id) : -1;
  if (index < 0) return { index, prev: null, next: null };
  return { index, prev: list[index - 1] ?? null, next: list[index + 1] ?? null };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
