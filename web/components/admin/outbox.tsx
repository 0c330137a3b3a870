"use client";

import { RefreshCw } from "lucide-react";

import { formatAge, outboxHealth, OUTBOX_BEHIND_S, serviceName } from "@/components/admin/admin-words";
import { useOutbox } from "@/components/admin/use-admin";
import { QueryView } from "@/components/app/query-view";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import type { Schemas } from "@/lib/api/client";

type Backlog = Schemas["ServiceBacklog"];

function Health({ backlog }: { backlog: Backlog }) {
  const health = outboxHealth(backlog.unpublished, backlog.oldest_age_s);
  return <Badge variant={health.tone}>{health.label}</Badge>;
}

function Oldest({ backlog }: { backlog: Backlog }) {
  return <>{backlog.unpublished ? formatAge(backlog.oldest_age_s) : "—"}</>;
}

/** Each service's outbox: events written and not yet published, and how long the oldest waits. */
export function Outbox() {
  const outbox = useOutbox();
  return (
    <section aria-labelledby="outbox-title" className="flex flex-col gap-4">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <div className="max-w-3xl">
          <h2 id="outbox-title" className="text-lg font-semibold">
            Outbox
          </h2>
          <p className="text-sm text-muted-foreground">
            Events each service has saved but not yet sent to the others. A few for a moment is normal; a backlog whose oldest event waits more than {formatAge(OUTBOX_BEHIND_S)} means sending is stuck. Refreshed every 15 s.
          </p>
        </div>
        <Button variant="outline" onClick={() => void outbox.refetch()} disabled={outbox.isFetching}>
          <RefreshCw aria-hidden className={outbox.isFetching ? "animate-spin motion-reduce:animate-none" : undefined} /> Refresh
        </Button>
      </div>
      <QueryView query={outbox} loading={<Skeleton className="h-56" />}>
        {(found) => (
          <>
            <div className="hidden rounded-xl border bg-card sm:block">
              <Table>
                <caption className="sr-only">Outbox backlog per service</caption>
                <TableHeader>
                  <TableRow className="hover:bg-transparent">
                    <TableHead scope="col">Service</TableHead>
                    <TableHead scope="col" className="text-right">
                      Waiting to send
                    </TableHead>
                    <TableHead scope="col" className="text-right">
                      Oldest waits
                    </TableHead>
                    <TableHead scope="col">State</TableHead>
                  </TableRow>
                </TableHeader>
                <TableBody>
                  {found.services.map((backlog) => (
                    <TableRow key={backlog.service} data-service={backlog.service}>
                      <TableCell className="font-medium">{serviceName(backlog.service)}</TableCell>
                      <TableCell className="text-right tabular-nums">{backlog.unpublished}</TableCell>
                      <TableCell className="text-right tabular-nums">
                        <Oldest backlog={backlog} />
                      </TableCell>
                      <TableCell>
                        <Health backlog={backlog} />
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </div>
            <ul className="flex flex-col divide-y rounded-xl border bg-card sm:hidden" aria-label="Outbox backlog per service">
              {found.services.map((backlog) => (
                <li key={backlog.service} className="flex items-center justify-between gap-3 p-3" data-service={backlog.service}>
                  <div>
                    <p className="font-medium">{serviceName(backlog.service)}</p>
                    <p className="text-sm text-muted-foreground tabular-nums">
                      {backlog.unpublished} waiting
                      {backlog.unpublished ? (
                        <>
                          {" "}
                          · oldest <Oldest backlog={backlog} />
                        </>
                      ) : null}
                    </p>
                  </div>
                  <Health backlog={backlog} />
                </li>
              ))}
            </ul>
          </>
        )}
      </QueryView>
    </section>
  );
}
