"use client";

import { useInfiniteQuery, type QueryKey } from "@tanstack/react-query";

/**
 * A list the gateway hands out a page at a time: each page names the cursor of the next, and
 * none when it is the last.
 */
export function useCursorPages<Page extends { next_cursor?: string | null }>(queryKey: QueryKey, fetchPage: (cursor: string | null) => Promise<Page>) {
  return useInfiniteQuery({
    queryKey,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
}
