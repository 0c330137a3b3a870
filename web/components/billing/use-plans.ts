"use client";

import { useQuery } from "@tanstack/react-query";

import { dataOf, useApi } from "@/lib/api/client";

/** The plans on sale, the prices of work, and the user's current plan with its limits. */
export function usePlans(staleTime?: number) {
  const api = useApi();
  return useQuery({ queryKey: ["plans"], queryFn: async () => dataOf(await api.GET("/v1/billing/plans")), staleTime });
}
