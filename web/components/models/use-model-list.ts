"use client";

import { useQuery } from "@tanstack/react-query";

import { dataOf, useApi } from "@/lib/api/client";

/**
 * The account's models in one list (the first 50): the dashboard, Train, Generate and the
 * gallery's filter read the same key, so one request serves them all.
 */
export function useModelList() {
  const api = useApi();
  return useQuery({ queryKey: ["models", "all"], queryFn: async () => dataOf(await api.GET("/v1/models", { params: { query: { limit: 50 } } })) });
}
