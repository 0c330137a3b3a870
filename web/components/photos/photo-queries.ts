"use client";

import { useQuery } from "@tanstack/react-query";

import { dataOf, useApi, type ApiClient, type Schemas } from "@/lib/api/client";
import { useCursorPages } from "@/lib/api/pages";

export const PHOTO_PAGE_SIZE = 48;
// The gateway keeps at most 300 photos per account: four pages of 100 cover them all.
const EVERY_PAGE_SIZE = 100;
const EVERY_MAX_PAGES = 10;

/** The photo library, newest first, a page at a time (cursor). */
export function usePhotoPages() {
  const api = useApi();
  return useCursorPages(["photos", "pages"], async (cursor) =>
    dataOf(await api.GET("/v1/photos", { params: { query: { limit: PHOTO_PAGE_SIZE, ...(cursor ? { cursor } : {}) } } })),
  );
}

export async function fetchEveryPhoto(api: ApiClient): Promise<Schemas["Photo"][]> {
  const photos: Schemas["Photo"][] = [];
  let cursor: string | null = null;
  for (let page = 0; page < EVERY_MAX_PAGES; page += 1) {
    const answer: Schemas["PhotoPage"] = dataOf(
      await api.GET("/v1/photos", { params: { query: { limit: EVERY_PAGE_SIZE, ...(cursor ? { cursor } : {}) } } }),
    );
    photos.push(...answer.photos);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return photos;
}

/** Every photo of the account (for the 10-30 count and the training's choice). */
export function useEveryPhoto() {
  const api = useApi();
  return useQuery({ queryKey: ["photos", "every"], queryFn: () => fetchEveryPhoto(api) });
}
