"use client";

import { History } from "lucide-react";

import { actorWords, auditWords } from "@/components/account/audit-actions";
import { EmptyState } from "@/components/app/empty-state";
import { PagedHistory } from "@/components/app/paged-history";
import { TableCell, TableRow } from "@/components/ui/table";
import { dataOf, useApi } from "@/lib/api/client";
import { useCursorPages } from "@/lib/api/pages";
import { formatDate } from "@/lib/format";

export const AUDIT_PAGE_SIZE = 20;

/**
 * The audit trail: security-relevant actions on the account, newest first. The gateway keeps
 * only a keyed hash of the network each came from and does not return it, so "from where" is
 * the request's id (what support needs to find it).
 */
export function AuditTrail() {
  const api = useApi();
  const audit = useCursorPages(["audit"], async (cursor) =>
    dataOf(await api.GET("/v1/me/audit", { params: { query: { limit: AUDIT_PAGE_SIZE, cursor } } })),
  );

  return (
    <PagedHistory
      query={audit}
      label="Your account history, newest first"
      loadingLabel="Loading your account history"
      skeletons={3}
      empty={
        <EmptyState icon={History} title="Nothing recorded yet">
          Checkouts, the billing portal, data exports and deletion requests are recorded here, with when they happened.
        </EmptyState>
      }
      columns={[{ label: "When" }, { label: "What" }, { label: "By" }, { label: "Request" }]}
      row={(entry) => (
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
      )}
      item={(entry) => (
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
      )}
    />
  );
}
