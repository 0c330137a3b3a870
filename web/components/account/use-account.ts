"use client";

import { useQuery } from "@tanstack/react-query";

import { anyInProgress } from "@/components/account/export-status";
import { ApiError, dataOf, useApi } from "@/lib/api/client";

/** Re-read an erasure or an export in progress this often, in case a live event is missed. */
export const PROGRESS_POLL_MS = 3_000;

export function useMe() {
  const api = useApi();
  return useQuery({ queryKey: ["me"], queryFn: async () => dataOf(await api.GET("/v1/me")) });
}

/**
 * The account's erasure, or null when none was asked for (the gateway answers 404
 * `deletion_not_found`: the normal case, not an error to show or toast).
 */
export function useDeletion() {
  const api = useApi();
  return useQuery({
    queryKey: ["deletion"],
    queryFn: async () => {
      try {
        return dataOf(await api.GET("/v1/me/deletion"));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }
    },
    refetchInterval: (query) => {
      const deletion = query.state.data;
      return deletion && deletion.status !== "completed" ? PROGRESS_POLL_MS : false;
    },
  });
}

export function useExports() {
  const api = useApi();
  return useQuery({
    queryKey: ["exports", "list"],
    queryFn: async () => dataOf(await api.GET("/v1/me/exports")),
    refetchInterval: (query) => (query.state.data && anyInProgress(query.state.data.exports) ? PROGRESS_POLL_MS : false),
  });
}
