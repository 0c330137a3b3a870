"use client";

import type { ReactNode } from "react";

import { ProblemNotice } from "@/components/app/problem-notice";
import { Button } from "@/components/ui/button";

/** What a paged list's foot needs of its infinite query. */
export type PagedQuery = {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  isFetchNextPageError: boolean;
  isError: boolean;
  error: unknown;
  fetchNextPage: () => Promise<unknown>;
  refetch: () => Promise<unknown>;
};

/**
 * The foot of a paged list: a button for the next page while there is one (else `end`), and the
 * problem of a page that failed, with a retry. With `showRefreshError`, a failed refresh of the
 * pages already shown is said too (and retried as a refresh).
 */
export function LoadMore({
  pages,
  label = "Load more",
  end = null,
  showRefreshError = false,
}: {
  pages: PagedQuery;
  label?: string;
  end?: ReactNode;
  showRefreshError?: boolean;
}) {
  return (
    <>
      {pages.hasNextPage ? (
        <Button variant="outline" className="self-center" onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
          {pages.isFetchingNextPage ? "Loading…" : label}
        </Button>
      ) : (
        end
      )}
      {pages.isFetchNextPageError || (showRefreshError && pages.isError) ? (
        <ProblemNotice error={pages.error} onRetry={() => void (pages.isFetchNextPageError ? pages.fetchNextPage() : pages.refetch())} />
      ) : null}
    </>
  );
}
