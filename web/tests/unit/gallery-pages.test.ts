import { describe, expect, it } from "vitest";

import {
  filtersFromSearch,
  filtersToSearch,
  flattenImages,
  formatBytes,
  hasFilters,
  imageQuery,
  matchesFilters,
  neighbours,
  NO_FILTERS,
  PAGE_SIZE,
  refreshDelay,
  updateImageIn,
  type Image,
  type ImagePage,
  type Pages,
} from "@/components/gallery/pages";

const NOW = Date.parse("2026-12-07T12:00:00Z");

function image(id: string, over: Partial<Image> = {}): Image {
  return {
    id,
    generation_id: "g1",
    model_id: "m1",
    index: 0,
    content_type: "image/webp",
    width: 96,
    height: 96,
    size_bytes: 500,
    blurhash: "LeEd?BogfQjcFlkBazaxs:oefPay",
    favourite: false,
    created_at: "2026-12-07T11:00:00Z",
    url: `https://s3/${id}.webp`,
    thumbnail_url: `https://s3/${id}.thumb.webp`,
    download_url: `https://s3/${id}.webp?response-content-disposition=attachment`,
    urls_expire_at: new Date(NOW + 15 * 60_000).toISOString(),
    prompt: "me on a beach",
    ...over,
  };
}

const page = (ids: string[], next: string | null = null): ImagePage => ({ images: ids.map((id) => image(id)), next_cursor: next });

describe("flattenImages", () => {
  it("is empty without pages", () => {
    expect(flattenImages(undefined)).toEqual([]);
    expect(flattenImages([])).toEqual([]);
  });

  it("keeps page order and drops an image repeated on a later page (new images pushed it down)", () => {
    const flat = flattenImages([page(["a", "b", "c"], "c1"), page(["c", "d"], "c2"), page(["d", "e"])]);
    expect(flat.map((i) => i.id)).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("keeps the first copy of a duplicate", () => {
    const first = { images: [image("a", { favourite: true })], next_cursor: "x" };
    const second = { images: [image("a", { favourite: false })], next_cursor: null };
    expect(flattenImages([first, second])[0]?.favourite).toBe(true);
  });
});

describe("filters", () => {
  it("reads model and favourites from the URL", () => {
    expect(filtersFromSearch(new URLSearchParams(""))).toEqual(NO_FILTERS);
    expect(filtersFromSearch(new URLSearchParams("model=m1&favourites=1"))).toEqual({ modelId: "m1", favourites: true });
    expect(filtersFromSearch(new URLSearchParams("favourites=true")).favourites).toBe(true);
    expect(filtersFromSearch(new URLSearchParams("favourites=0")).favourites).toBe(false);
    expect(filtersFromSearch(new URLSearchParams(`model=${"x".repeat(65)}`)).modelId).toBeNull();
  });

  it("writes them back, keeping other parameters and dropping what is off", () => {
    expect(filtersToSearch({ modelId: "m1", favourites: true }, "image=abc").toString()).toBe("image=abc&model=m1&favourites=1");
    expect(filtersToSearch(NO_FILTERS, "model=m1&favourites=1&image=abc").toString()).toBe("image=abc");
  });

  it("round-trips", () => {
    const filters = { modelId: "m-2", favourites: true };
    expect(filtersFromSearch(filtersToSearch(filters))).toEqual(filters);
  });

  it("asks the API only for what is set (both filters are server-side)", () => {
    expect(imageQuery(NO_FILTERS)).toEqual({ limit: PAGE_SIZE });
    expect(imageQuery({ modelId: "m1", favourites: true }, "cur")).toEqual({ limit: PAGE_SIZE, model_id: "m1", favourites: true, cursor: "cur" });
    expect(imageQuery({ modelId: null, favourites: false }, null)).not.toHaveProperty("cursor");
  });

  it("matches images to filters", () => {
    expect(matchesFilters(image("a"), NO_FILTERS)).toBe(true);
    expect(matchesFilters(image("a", { model_id: "m2" }), { modelId: "m1", favourites: false })).toBe(false);
    expect(matchesFilters(image("a"), { modelId: null, favourites: true })).toBe(false);
    expect(matchesFilters(image("a", { favourite: true }), { modelId: "m1", favourites: true })).toBe(true);
    expect(hasFilters(NO_FILTERS)).toBe(false);
    expect(hasFilters({ modelId: null, favourites: true })).toBe(true);
  });
});

describe("refreshDelay", () => {
  it("is off when nothing is loaded", () => {
    expect(refreshDelay([], NOW)).toBe(false);
  });

  it("re-reads a minute before the earliest URL expires", () => {
    const images = [image("a"), image("b", { urls_expire_at: new Date(NOW + 10 * 60_000).toISOString() })];
    expect(refreshDelay(images, NOW)).toBe(9 * 60_000);
  });

  it("keeps a short lifetime useful (a fifth of it as margin) and never loops on expired URLs", () => {
    expect(refreshDelay([image("a", { urls_expire_at: new Date(NOW + 100_000).toISOString() })], NOW)).toBe(80_000);
    expect(refreshDelay([image("a", { urls_expire_at: new Date(NOW - 60_000).toISOString() })], NOW)).toBe(5_000);
  });

  it("ignores unreadable dates", () => {
    expect(refreshDelay([image("a", { urls_expire_at: "soon" })], NOW)).toBe(false);
  });
});

describe("updateImageIn", () => {
  const pages: Pages = { pages: [page(["a", "b"], "c"), page(["c"])], pageParams: [null, "c"] };

  it("changes an image in infinite pages without touching the others", () => {
    const next = updateImageIn(pages, "c", (i) => ({ ...i, favourite: true }));
    expect(next.pages[1]?.images[0]?.favourite).toBe(true);
    expect(next.pages[0]).toBe(pages.pages[0]);
    expect(pages.pages[1]?.images[0]?.favourite).toBe(false);
  });

  it("removes an image", () => {
    const next = updateImageIn(pages, "a", () => null);
    expect(flattenImages(next.pages).map((i) => i.id)).toEqual(["b", "c"]);
  });

  it("handles a single page and a single image, and leaves other shapes alone", () => {
    expect(updateImageIn(page(["a"]), "a", (i) => ({ ...i, favourite: true })).images[0]?.favourite).toBe(true);
    expect(updateImageIn(image("a"), "a", (i) => ({ ...i, favourite: true })).favourite).toBe(true);
    expect(updateImageIn(image("b"), "a", () => null).id).toBe("b");
    const other = { hello: "world" };
    expect(updateImageIn(other, "a", () => null)).toBe(other);
    expect(updateImageIn(undefined, "a", () => null)).toBeUndefined();
  });
});

describe("neighbours", () => {
  const list = [{ id: "a" }, { id: "b" }, { id: "c" }];
  it("finds previous and next", () => {
    expect(neighbours(list, "b")).toEqual({ index: 1, prev: { id: "a" }, next: { id: "c" } });
    expect(neighbours(list, "a").prev).toBeNull();
    expect(neighbours(list, "c").next).toBeNull();
    expect(neighbours(list, "zzz")).toEqual({ index: -1, prev: null, next: null });
    expect(neighbours(list, null).index).toBe(-1);
  });
});

describe("formatBytes", () => {
  it("reads like a person would say it", () => {
    expect(formatBytes(452)).toBe("452 B");
    expect(formatBytes(2048)).toBe("2.0 KB");
    expect(formatBytes(200 * 1024)).toBe("200 KB");
    expect(formatBytes(3.5 * 1024 * 1024)).toBe("3.5 MB");
  });
});
