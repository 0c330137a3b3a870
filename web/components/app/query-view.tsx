"use client";

import type { UseQueryResult } from "@tanstack/react-query";
import type { ReactNode } from "react";

import { ProblemNotice } from "@/components/app/problem-notice";

/**
 * A query's faces: `loading` while it is pending, its problem with a retry when it failed (a
 * failed refresh too), else what `children` draws of its data (empty included).
 */
export function QueryView<T>({ query, loading, children }: { query: UseQueryResult<T>; loading: ReactNode; children: (data: T) => ReactNode }) {
  if (query.isPending) return loading;
  if (query.isError) return <ProblemNotice error={query.error} onRetry={() => void query.refetch()} />;
  return children(query.data);
}
