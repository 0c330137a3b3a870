"use client";

import type { InfiniteData, UseInfiniteQueryResult } from "@tanstack/react-query";
import { Receipt } from "lucide-react";
import type { ReactNode } from "react";

import { describeEntry, type Tone } from "@/components/billing/ledger-kinds";
import { EmptyState } from "@/components/app/empty-state";
import { PagedHistory } from "@/components/app/paged-history";
import { TableCell, TableRow } from "@/components/ui/table";
import type { Schemas } from "@/lib/api/client";
import { formatDate } from "@/lib/format";
import { cn } from "@/lib/utils";

export const LEDGER_PAGE_SIZE = 20;

const TONE_CLASS: Record<Tone, string> = {
  credit: "text-success",
  debit: "text-destructive",
  held: "text-warning",
  neutral: "text-muted-foreground",
};

type LedgerQuery = UseInfiniteQueryResult<InfiniteData<Schemas["LedgerPage"]>>;

const YOURS = {
  label: "Your credit history, newest first",
  loadingLabel: "Loading your credit history",
  empty: (
    <EmptyState icon={Receipt} title="No credit movements yet">
      Buy a credit pack or subscribe: every purchase, and every credit a training or an image uses, is listed here.
    </EmptyState>
  ),
};

/**
 * Every movement of a user's credits, newest first, a page at a time: the signed-in user's own
 * by default; the operator console names whose it is (`label`, `loadingLabel`, `empty`).
 */
export function Ledger({
  query,
  label = YOURS.label,
  loadingLabel = YOURS.loadingLabel,
  empty = YOURS.empty,
}: {
  query: LedgerQuery;
  label?: string;
  loadingLabel?: string;
  empty?: ReactNode;
}) {
  return (
    <PagedHistory
      query={query}
      label={label}
      loadingLabel={loadingLabel}
      skeletons={4}
      empty={empty}
      columns={[{ label: "Date" }, { label: "What" }, { label: "Amount", className: "text-right" }, { label: "Balance after", className: "text-right" }]}
      row={(entry) => {
        const view = describeEntry(entry);
        return (
          <TableRow key={entry.id} data-ledger-kind={entry.kind}>
            <TableCell className="align-top text-muted-foreground">
              <time dateTime={entry.created_at} className="block min-w-24 whitespace-normal">
                {formatDate(entry.created_at)}
              </time>
            </TableCell>
            <TableCell className="min-w-40 align-top whitespace-normal">
              <span className="font-medium">{view.label}</span>
              {view.detail ? <span className="block text-sm text-muted-foreground">{view.detail}</span> : null}
            </TableCell>
            <TableCell className={cn("text-right align-top font-semibold tabular-nums", TONE_CLASS[view.tone])}>
              <span aria-hidden>{view.amount}</span>
              <span className="sr-only">{view.amountSpoken}</span>
            </TableCell>
            <TableCell className="text-right align-top tabular-nums">{view.after}</TableCell>
          </TableRow>
        );
      }}
      item={(entry) => {
        const view = describeEntry(entry);
        return (
          <li key={entry.id} className="flex items-start justify-between gap-3 p-3" data-ledger-kind={entry.kind}>
            <div className="min-w-0">
              <p className="font-medium">{view.label}</p>
              {view.detail ? <p className="text-sm text-muted-foreground">{view.detail}</p> : null}
              <p className="text-sm text-muted-foreground">
                <time dateTime={entry.created_at}>{formatDate(entry.created_at)}</time>
              </p>
            </div>
            <div className="shrink-0 text-right">
              <p className={cn("font-semibold tabular-nums", TONE_CLASS[view.tone])}>
                <span aria-hidden>{view.amount}</span>
                <span className="sr-only">{view.amountSpoken}</span>
              </p>
              <p className="text-sm text-muted-foreground tabular-nums">
                <span className="sr-only">Balance after: </span>
                {view.after}
              </p>
            </div>
          </li>
        );
      }}
      end={(entries) =>
        entries.length > LEDGER_PAGE_SIZE ? <p className="text-center text-sm text-muted-foreground">That is everything: {entries.length} entries.</p> : null
      }
    />
  );
}
