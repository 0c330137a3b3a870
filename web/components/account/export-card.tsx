"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Download, FileArchive, Loader2, RefreshCw } from "lucide-react";
import { useEffect, useRef, useState } from "react";

import { exportView, formatBytes } from "@/components/account/export-status";
import { useExports } from "@/components/account/use-account";
import { ProblemNotice } from "@/components/app/problem-notice";
import { IntentKeys } from "@/components/billing/intent";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Progress } from "@/components/ui/progress";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, idempotencyKey, useApi, type Schemas } from "@/lib/api/client";
import { formatDate, formatRelative } from "@/lib/format";

type Export = Schemas["Export"];

/** True once `iso` has passed (re-renders at that moment). */
function usePassed(iso: string | null | undefined): boolean {
  const at = iso ? Date.parse(iso) : NaN;
  const [passedAt, setPassedAt] = useState<number | null>(null);
  useEffect(() => {
    if (Number.isNaN(at)) return;
    const timer = setTimeout(() => setPassedAt(at), Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [at]);
  return passedAt === at;
}

/**
 * The download link of a ready export: `GET /v1/me/exports/{id}` issues a short-lived presigned
 * link (and an audit entry), so it is asked for only when wanted, under its own key (live
 * events do not re-issue it), and asked again once it has expired.
 */
function DownloadLink({ exp }: { exp: Export }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const link = useQuery({
    queryKey: ["export-link", exp.id],
    queryFn: async () => dataOf(await api.GET("/v1/me/exports/{export_id}", { params: { path: { export_id: exp.id } } })),
    staleTime: Infinity,
  });
  const expired = usePassed(link.data?.download_expires_at);
  // Each link issued is an entry of the account's history: show it there.
  const issuedAt = link.data?.download_url ? link.dataUpdatedAt : 0;
  useEffect(() => {
    if (issuedAt) void queryClient.invalidateQueries({ queryKey: ["audit"] });
  }, [issuedAt, queryClient]);

  if (link.isPending) return <Skeleton className="h-10 w-56" />;
  if (link.isError) return <ProblemNotice error={link.error} onRetry={() => void link.refetch()} />;
  const url = link.data.download_url;
  if (!url || expired) {
    return (
      <div className="flex flex-wrap items-center gap-3">
        <p className="text-sm text-muted-foreground">{url ? "This download link has expired." : "No link could be made right now."}</p>
        <Button size="sm" variant="outline" onClick={() => void link.refetch()} disabled={link.isFetching}>
          <RefreshCw aria-hidden /> Get a fresh link
        </Button>
      </div>
    );
  }
  const size = formatBytes(link.data.bytes);
  return (
    <div className="flex flex-col gap-2">
      <Button asChild className="self-start">
        <a href={url} download data-testid="export-download">
          <Download aria-hidden /> Download your data{size ? ` (${size})` : ""}
        </a>
      </Button>
      <p className="text-sm text-muted-foreground">
        This link works until {formatDate(link.data.download_expires_at)} ({formatRelative(link.data.download_expires_at)}).
        {link.data.expires_at ? ` The archive is kept until ${formatDate(link.data.expires_at)}; ask for a fresh link any time before then.` : null}
      </p>
    </div>
  );
}

function ExportRow({ exp, autoLink }: { exp: Export; autoLink: boolean }) {
  const view = exportView(exp);
  const [wantLink, setWantLink] = useState(false);
  const ready = exp.status === "ready" && view.label === "Ready";
  return (
    <div className="flex flex-col gap-3 rounded-lg border p-4" data-export-status={exp.status}>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <p className="text-sm">
          Asked for <time dateTime={exp.requested_at}>{formatDate(exp.requested_at)}</time>
        </p>
        <Badge variant={view.tone}>{view.label}</Badge>
      </div>
      {view.progress !== null ? <Progress value={view.progress} aria-label={`Export progress: ${view.label}`} /> : null}
      <p className="text-sm text-muted-foreground">{view.description}</p>
      {ready ? (
        autoLink || wantLink ? (
          <DownloadLink exp={exp} />
        ) : (
          <Button size="sm" variant="outline" className="self-start" onClick={() => setWantLink(true)}>
            <Download aria-hidden /> Get a download link
          </Button>
        )
      ) : null}
    </div>
  );
}

/** Export my data: start one, follow it, download it; the recent ones below. */
export function ExportCard({ erasing }: { erasing: boolean }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const exports = useExports();
  const keys = useRef(new IntentKeys(idempotencyKey));
  // Exports seen in progress on this visit: their link is fetched as soon as they are ready.
  const [watched, setWatched] = useState<ReadonlySet<string>>(() => new Set());

  const list = exports.data?.exports;
  const running = list?.filter((e) => e.status === "collecting" || e.status === "assembling").map((e) => e.id) ?? [];
  if (running.some((id) => !watched.has(id))) setWatched(new Set([...watched, ...running]));

  const start = useMutation({
    mutationFn: async () => {
      try {
        const created = dataOf(await api.POST("/v1/me/export", { params: { header: { "Idempotency-Key": keys.current.keyFor("export") } } }));
        keys.current.settle("export", null);
        return created;
      } catch (error) {
        keys.current.settle("export", error);
        throw error;
      }
    },
    onSuccess: (created) => {
      setWatched((old) => new Set([...old, created.id]));
      // Show it at once; the re-read below (and the live event) moves it on.
      queryClient.setQueryData<Schemas["ExportList"]>(["exports", "list"], (old) => ({
        exports: [created, ...(old?.exports.filter((e) => e.id !== created.id) ?? [])],
      }));
      void queryClient.invalidateQueries({ queryKey: ["exports"] });
      void queryClient.invalidateQueries({ queryKey: ["audit"] });
    },
  });

  const newest = list?.[0];
  const older = list?.slice(1) ?? [];
  const preparing = newest ? exportView(newest).inProgress : false;

  return (
    <Card>
      <CardHeader>
        <CardTitle className="flex items-center gap-2">
          <FileArchive aria-hidden className="size-5 text-accent" /> Export my data
        </CardTitle>
        <CardDescription>
          One zip file with everything Visiona holds about you: your photos, models, images and prompts, your payments and credits, and your account records, as files and JSON. It usually takes a minute; we tell you when it is ready.
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-4">
        <Button className="self-start" onClick={() => start.mutate()} disabled={start.isPending || preparing || erasing}>
          {start.isPending ? <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> : <FileArchive aria-hidden />}
          {start.isPending ? "Starting…" : preparing ? "Export in progress…" : "Export my data"}
        </Button>
        {erasing ? <p className="text-sm text-muted-foreground">Exports cannot be started while your account is being deleted.</p> : null}

        <div aria-live="polite" className="flex flex-col gap-3">
          {exports.isPending ? (
            <Skeleton className="h-24" />
          ) : exports.isError ? (
            <ProblemNotice error={exports.error} onRetry={() => void exports.refetch()} />
          ) : newest ? (
            <ExportRow key={newest.id} exp={newest} autoLink={watched.has(newest.id)} />
          ) : (
            <p className="text-sm text-muted-foreground">You have not exported your data yet.</p>
          )}
        </div>

        {older.length ? (
          <details className="group">
            <summary className="cursor-pointer rounded-md text-sm font-medium outline-none focus-visible:ring-[3px] focus-visible:ring-ring/60">
              Earlier exports ({older.length})
            </summary>
            <ul className="mt-3 flex flex-col gap-3">
              {older.map((exp) => (
                <li key={exp.id}>
                  <ExportRow exp={exp} autoLink={false} />
                </li>
              ))}
            </ul>
          </details>
        ) : null}
      </CardContent>
    </Card>
  );
}
