"use client";

import { useInfiniteQuery } from "@tanstack/react-query";
import { History } from "lucide-react";

import { actorWords, auditWords } from "@/components/account/audit-actions";
import { EmptyState } from "@/components/app/empty-state";
import { ProblemNotice } from "@/components/app/problem-notice";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { dataOf, useApi } from "@/lib/api/client";
import { formatDate } from "@/lib/format";

export const AUDIT_PAGE_SIZE = 20;

/**
 * The audit trail: security-relevant actions on the account, newest first. The gateway keeps
 * only a keyed hash of the network each came from and does not return it, so "from where" is
 * the request's id (what support needs to find it).
 */
export function AuditTrail() {
  const api = useApi();
  const audit = useInfiniteQuery({
    queryKey: ["audit"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => dataOf(await api.GET("/v1/me/audit", { params: { query: { limit: AUDIT_PAGE_SIZE, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor,
  });

  if (audit.isPending) {
    return (
      <div className="flex flex-col gap-2" aria-busy="true" aria-label="Loading your account history">
        {[0, 1, 2].map((i) => (
          <Skeleton key={i} className="h-12" />
        ))}
      </div>
    );
  }
  if (!audit.data) return <ProblemNotice error={audit.error} onRetry={() => void audit.refetch()} />;
  const entries = audit.data.pages.flatMap((page) => page.entries);
  if (entries.length === 0) {
    return (
      <EmptyState icon={History} title="Nothing recorded yet">
        Checkouts, the billing portal, data exports and deletion requests are recorded here, with when they happened.
      </EmptyState>
    );
  }
  return (
    <div className="flex flex-col gap-4">
      <div className="hidden rounded-xl border bg-card sm:block">
        <Table>
          <caption className="sr-only">Your account history, newest first</caption>
          <TableHeader>
            <TableRow className="hover:bg-transparent">
              <TableHead scope="col">When</TableHead>
              <TableHead scope="col">What</TableHead>
              <TableHead scope="col">By</TableHead>
              <TableHead scope="col">Request</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {entries.map((entry) => (
              <TableRow key={entry.id} data-audit-action={entry.action}>
                <TableCell className="align-top text-muted-foreground">
                  <time dateTime={entry.at} className="block min-w-24 whitespace-normal">
                    {formatDate(entry.at)}
                  </time>
                </TableCell>
                <TableCell className="min-w-48 align-top whitespace-normal">{auditWords(entry)}</TableCell>
                <TableCell className="align-top">{actorWords(entry.actor)}</TableCell>
                <TableCell className="align-top font-mono text-xs text-muted-foreground">
                  {entry.request_id ? <span title={entry.request_id}>{entry.request_id.slice(0, 8)}</span> : "—"}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </div>
      {/* On a phone, one action per line. */}
      <ul className="flex flex-col divide-y rounded-xl border bg-card sm:hidden" aria-label="Your account history, newest first">
        {entries.map((entry) => (
          <li key={entry.id} className="flex flex-col gap-0.5 p-3" data-audit-action={entry.action}>
            <p className="font-medium">{auditWords(entry)}</p>
            <p className="text-sm text-muted-foreground">
              <time dateTime={entry.at}>{formatDate(entry.at)}</time> · {actorWords(entry.actor)}
              {entry.request_id ? (
                <>
                  {" "}
                  · <span className="font-mono text-xs" title={entry.request_id}>request {entry.request_id.slice(0, 8)}</span>
                </>
              ) : null}
            </p>
          </li>
        ))}
      </ul>
      {audit.hasNextPage ? (
        <Button variant="outline" className="self-center" onClick={() => void audit.fetchNextPage()} disabled={audit.isFetchingNextPage}>
          {audit.isFetchingNextPage ? "Loading…" : "Load more"}
        </Button>
      ) : null}
      {audit.isFetchNextPageError ? <ProblemNotice error={audit.error} onRetry={() => void audit.fetchNextPage()} /> : null}
    </div>
  );
}
