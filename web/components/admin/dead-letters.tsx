"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { MailCheck, RefreshCw, Send, Trash2 } from "lucide-react";
import { toast } from "react-toastify";

import { deathWords, serviceName } from "@/components/admin/admin-words";
import { REASON_CONFIRMATION } from "@/components/admin/reason-field";
import { ADMIN_KEY, DEAD_LETTERS_SHOWN, useDeadLetters, useOnce } from "@/components/admin/use-admin";
import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { EmptyState } from "@/components/app/empty-state";
import { QueryView } from "@/components/app/query-view";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";
import { formatDate, formatRelative } from "@/lib/format";

type Service = Schemas["ServiceDeadLetters"]["service"];
type Letter = Schemas["DeadLetter"];
type Where = { service: Service; consumer: string };

function useSettle(where: Where, letter: Letter, replay: boolean) {
  const api = useApi();
  const queryClient = useQueryClient();
  const once = useOnce();
  const path = { service: where.service, consumer: where.consumer, event_id: letter.event_id };
  return useMutation({
    mutationFn: (reason: string) =>
      once(`${replay ? "replay" : "discard"}:${where.service}:${where.consumer}:${letter.event_id}:${reason}`, async (key) => {
        const params = { path, header: { "Idempotency-Key": key } };
        const body = { reason: reason.trim() };
        return dataOf(
          replay
            ? await api.POST("/v1/admin/dead-letters/{service}/{consumer}/{event_id}/replay", { params, body })
            : await api.POST("/v1/admin/dead-letters/{service}/{consumer}/{event_id}/discard", { params, body }),
        );
      }),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: [...ADMIN_KEY, "dead-letters"] }),
    meta: { audience: "operator", inPlace: ["dead_letter_not_found", "consumer_not_found", "reason_required"] },
  });
}

function Replay({ where, letter }: { where: Where; letter: Letter }) {
  const replay = useSettle(where, letter, true);
  return (
    <ConfirmActionDialog
      trigger={
        <Button variant="outline" size="sm" aria-label={`Replay event ${letter.event_id}`}>
          <Send aria-hidden /> Replay
        </Button>
      }
      title="Replay this event?"
      typedConfirmation={REASON_CONFIRMATION}
      confirmVariant="default"
      confirmLabel="Replay"
      confirmIcon={<Send aria-hidden />}
      pendingLabel="Replaying…"
      cancelLabel="Cancel"
      onConfirm={async (reason) => {
        await replay.mutateAsync(reason);
        toast.success(`Replayed to ${where.consumer}. If it still cannot be handled, it comes back here.`, { toastId: `replay-${letter.event_id}` });
      }}
    >
      <p>
        It goes back to <span className="font-mono text-foreground">{where.consumer}</span>, which applies it once (if it was applied already, nothing happens again). If it still cannot be handled, it comes back here.
      </p>
      <p className="font-mono text-xs break-all">{letter.routing_key} · {letter.event_id}</p>
    </ConfirmActionDialog>
  );
}

function Discard({ where, letter }: { where: Where; letter: Letter }) {
  const discard = useSettle(where, letter, false);
  return (
    <ConfirmActionDialog
      trigger={
        <Button variant="outline" size="sm" className="text-destructive" aria-label={`Discard event ${letter.event_id}`}>
          <Trash2 aria-hidden /> Discard
        </Button>
      }
      title="Discard this event for good?"
      typedConfirmation={REASON_CONFIRMATION}
      confirmLabel="Discard for good"
      confirmIcon={<Trash2 aria-hidden />}
      pendingLabel="Discarding…"
      cancelLabel="Keep it"
      onConfirm={async (reason) => {
        await discard.mutateAsync(reason);
        toast.success("Discarded. It will never be applied.", { toastId: `discard-${letter.event_id}` });
      }}
    >
      <p>
        It is removed and never applied: whatever it would have changed in <span className="font-mono text-foreground">{where.consumer}</span> stays as it is. This cannot be undone.
      </p>
      <p className="font-mono text-xs break-all">{letter.routing_key} · {letter.event_id}</p>
    </ConfirmActionDialog>
  );
}

function Died({ letter }: { letter: Letter }) {
  return (
    <>
      {deathWords(letter.reason)}
      {letter.deaths > 1 ? <span className="block text-xs text-muted-foreground">Died {letter.deaths} times</span> : null}
    </>
  );
}

function When({ letter }: { letter: Letter }) {
  if (!letter.died_at) return <span className="text-muted-foreground">—</span>;
  return (
    <time dateTime={letter.died_at} title={formatDate(letter.died_at)}>
      {formatRelative(letter.died_at)}
    </time>
  );
}

/** One consumer group's dead letters: a table from the small breakpoint up, a list on a phone. */
function Group({ service, group }: { service: Service; group: Schemas["ConsumerDeadLetters"] }) {
  const where = { service, consumer: group.consumer };
  const label = `Dead letters of ${group.consumer}, oldest first`;
  return (
    <div className="flex flex-col gap-3" data-consumer={group.consumer}>
      <div className="flex flex-wrap items-center gap-2">
        <h4 className="font-mono text-sm font-semibold">{group.consumer}</h4>
        <Badge variant="warning">{group.count} waiting</Badge>
        {group.count > group.letters.length ? <span className="text-sm text-muted-foreground">the oldest {group.letters.length} shown</span> : null}
      </div>
      <div className="hidden rounded-lg border sm:block">
        <Table>
          <caption className="sr-only">{label}</caption>
          <TableHeader>
            <TableRow className="hover:bg-transparent">
              <TableHead scope="col">Event</TableHead>
              <TableHead scope="col">Routing key</TableHead>
              <TableHead scope="col">Why it died</TableHead>
              <TableHead scope="col">When</TableHead>
              <TableHead scope="col" className="sr-only">
                Actions
              </TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {group.letters.map((letter) => (
              <TableRow key={letter.event_id} data-event-id={letter.event_id}>
                <TableCell className="align-top font-mono text-xs" title={letter.event_id}>
                  {letter.event_id.slice(0, 8)}
                </TableCell>
                <TableCell className="align-top font-mono text-xs whitespace-normal break-all">{letter.routing_key}</TableCell>
                <TableCell className="min-w-40 align-top whitespace-normal">
                  <Died letter={letter} />
                </TableCell>
                <TableCell className="align-top">
                  <When letter={letter} />
                </TableCell>
                <TableCell className="align-top">
                  <div className="flex gap-2">
                    <Replay where={where} letter={letter} />
                    <Discard where={where} letter={letter} />
                  </div>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </div>
      <ul className="flex flex-col divide-y rounded-lg border sm:hidden" aria-label={label}>
        {group.letters.map((letter) => (
          <li key={letter.event_id} className="flex flex-col gap-1.5 p-3" data-event-id={letter.event_id}>
            <p className="font-mono text-xs break-all">{letter.routing_key}</p>
            <p className="text-sm">
              <Died letter={letter} />
            </p>
            <p className="text-sm text-muted-foreground">
              <When letter={letter} /> · <span className="font-mono text-xs">{letter.event_id.slice(0, 8)}</span>
            </p>
            <div className="mt-1 flex gap-2">
              <Replay where={where} letter={letter} />
              <Discard where={where} letter={letter} />
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}

function ServiceCard({ found }: { found: Schemas["ServiceDeadLetters"] }) {
  const waiting = found.consumers.filter((group) => group.count > 0);
  const total = waiting.reduce((sum, group) => sum + group.count, 0);
  return (
    <Card data-service={found.service}>
      <CardHeader>
        <CardTitle className="flex items-center gap-2">
          {serviceName(found.service)}
          {total ? <Badge variant="warning">{total}</Badge> : <Badge variant="success">None</Badge>}
        </CardTitle>
        <CardDescription>
          {found.consumers.length} consumer group{found.consumers.length === 1 ? "" : "s"}
          {waiting.length ? `, ${waiting.length} with dead letters` : ", none with dead letters"}.
        </CardDescription>
      </CardHeader>
      {waiting.length ? (
        <CardContent className="flex flex-col gap-6">
          {waiting.map((group) => (
            <Group key={group.consumer} service={found.service} group={group} />
          ))}
        </CardContent>
      ) : null}
    </Card>
  );
}

/** Events a consumer could not handle, per service and group: replay or discard each. */
export function DeadLetters() {
  const letters = useDeadLetters();
  return (
    <section aria-labelledby="dead-letters-title" className="flex flex-col gap-4">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <div className="max-w-3xl">
          <h2 id="dead-letters-title" className="text-lg font-semibold">
            Dead letters
          </h2>
          <p className="text-sm text-muted-foreground">
            Events a service could not handle after its retries. Up to the oldest {DEAD_LETTERS_SHOWN} of each group are shown; their contents never are.
          </p>
        </div>
        <Button variant="outline" onClick={() => void letters.refetch()} disabled={letters.isFetching}>
          <RefreshCw aria-hidden className={letters.isFetching ? "animate-spin motion-reduce:animate-none" : undefined} /> Refresh
        </Button>
      </div>
      <QueryView query={letters} loading={<Skeleton className="h-40" />}>
        {(found) =>
          found.services.every((s) => s.consumers.every((group) => group.count === 0)) ? (
            <EmptyState icon={MailCheck} title="No dead letters">
              Every service handled every event. An event that keeps failing, or that its consumer cannot read, shows up here.
            </EmptyState>
          ) : (
            <div className="flex flex-col gap-4">
              {found.services.map((service) => (
                <ServiceCard key={service.service} found={service} />
              ))}
            </div>
          )
        }
      </QueryView>
    </section>
  );
}
