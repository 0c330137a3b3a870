"use client";

import type { ReactNode } from "react";

import { LoadMore, type PagedQuery } from "@/components/app/load-more";
import { ProblemNotice } from "@/components/app/problem-notice";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableHead, TableHeader, TableRow } from "@/components/ui/table";

type HistoryQuery<Entry> = PagedQuery & { isPending: boolean; data: { pages: { entries: Entry[] }[] } | undefined };

/**
 * A history the gateway pages (credit movements, account actions), newest first: a table from
 * the small breakpoint up, one entry per line on a phone, then "Load more". `label` names it
 * for assistive technology in both forms.
 */
export function PagedHistory<Entry>({
  query,
  label,
  loadingLabel,
  skeletons,
  empty,
  columns,
  row,
  item,
  end,
}: {
  query: HistoryQuery<Entry>;
  label: string;
  loadingLabel: string;
  skeletons: number;
  empty: ReactNode;
  /** The table's column headings, in order. */
  columns: { label: string; className?: string }[];
  /** An entry as a table row (keyed). */
  row: (entry: Entry) => ReactNode;
  /** An entry as a phone's list item (keyed). */
  item: (entry: Entry) => ReactNode;
  /** What to say under the last page. */
  end?: (entries: Entry[]) => ReactNode;
}) {
  if (query.isPending) {
    return (
      <div className="flex flex-col gap-2" aria-busy="true" aria-label={loadingLabel}>
        {Array.from({ length: skeletons }, (_, i) => (
          <Skeleton key={i} className="h-12" />
        ))}
      </div>
    );
  }
  // A failed "Load more" keeps what was loaded (the query is in error but has its pages).
  if (!query.data) return <ProblemNotice error={query.error} onRetry={() => void query.refetch()} />;

  const entries = query.data.pages.flatMap((page) => page.entries);
  if (entries.length === 0) return empty;

  return (
    <div className="flex flex-col gap-4">
      <div className="hidden rounded-xl border bg-card sm:block">
        <Table>
          <caption className="sr-only">{label}</caption>
          <TableHeader>
            <TableRow className="hover:bg-transparent">
              {columns.map((column) => (
                <TableHead key={column.label} scope="col" className={column.className}>
                  {column.label}
                </TableHead>
              ))}
            </TableRow>
          </TableHeader>
          <TableBody>{entries.map(row)}</TableBody>
        </Table>
      </div>
      {/* On a phone, one entry per line: a table's columns do not fit 390 px. */}
      <ul className="flex flex-col divide-y rounded-xl border bg-card sm:hidden" aria-label={label}>
        {entries.map(item)}
      </ul>
      <LoadMore pages={query} end={end?.(entries)} />
    </div>
  );
}
