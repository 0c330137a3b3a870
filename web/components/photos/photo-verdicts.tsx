"use client";

import { AlertTriangle, CheckCircle2, Clock, FileImage, Loader2, RotateCcw, X, XCircle } from "lucide-react";

import { useState } from "react";

import { StatusBadge } from "@/components/app/status-badge";
import { Button } from "@/components/ui/button";
import { Progress } from "@/components/ui/progress";
import { cn } from "@/lib/utils";

import { verdictOf, type Tone } from "./photo-reasons";
import { formatBytes, type UploadItem } from "./upload-queue";

const TONE_TEXT: Record<Tone, string> = {
  success: "text-success",
  warning: "text-warning",
  destructive: "text-destructive",
  info: "text-info",
};

/** What `data-photo-status` says of an item: its server status once judged, else its phase. */
export function itemStatus(item: UploadItem): string {
  return item.phase.kind === "verdict" ? item.phase.photo.status : item.phase.kind;
}

function Thumb({ item }: { item: UploadItem }) {
  // A file the browser cannot draw (not really an image) falls back to the icon.
  const [broken, setBroken] = useState(false);
  if (item.previewUrl && !broken) {
    // eslint-disable-next-line @next/next/no-img-element -- a local object URL, not a remote image
    return <img src={item.previewUrl} alt="" onError={() => setBroken(true)} className="size-16 shrink-0 rounded-md object-cover" />;
  }
  return (
    <span aria-hidden className="flex size-16 shrink-0 items-center justify-center rounded-md border bg-muted">
      <FileImage className="size-6 text-muted-foreground" />
    </span>
  );
}

function Row({ item, onRetry, onRemove }: { item: UploadItem; onRetry: (key: string) => void; onRemove: (key: string) => void }) {
  const phase = item.phase;
  return (
    <li data-photo-status={itemStatus(item)} className="flex gap-3 rounded-xl border bg-card p-3">
      <Thumb item={item} />
      <div className="flex min-w-0 flex-1 flex-col gap-1.5">
        <div className="flex flex-wrap items-center justify-between gap-x-3 gap-y-1">
          <p className="min-w-0 truncate text-sm font-medium" title={item.name}>
            {item.name}
          </p>
          <span className="text-xs text-muted-foreground tabular-nums">{formatBytes(item.size)}</span>
        </div>

        {phase.kind === "queued" ? (
          <div className="flex flex-wrap items-center justify-between gap-2">
            <p className="flex items-center gap-1.5 text-sm text-muted-foreground">
              <Clock aria-hidden className="size-4" /> Waiting to upload
            </p>
            <Button size="sm" variant="ghost" onClick={() => onRemove(item.key)} aria-label={`Don't upload ${item.name}`}>
              <X aria-hidden /> Don&apos;t upload
            </Button>
          </div>
        ) : null}

        {phase.kind === "uploading" ? (
          <div className="flex items-center gap-3">
            <Progress
              aria-label={`Uploading ${item.name}`}
              value={phase.total ? Math.round((phase.loaded / phase.total) * 100) : 0}
              getValueLabel={(value) => `${value}% uploaded`}
            />
            <span className="w-10 text-right text-xs tabular-nums text-muted-foreground">
              {phase.total ? Math.round((phase.loaded / phase.total) * 100) : 0}%
            </span>
          </div>
        ) : null}

        {phase.kind === "completing" ? (
          <p className="flex items-center gap-1.5 text-sm text-muted-foreground">
            <Loader2 aria-hidden className="size-4 animate-spin" /> Uploaded — checking the photo…
          </p>
        ) : null}

        {phase.kind === "verdict" ? <VerdictText photo={phase.photo} /> : null}

        {phase.kind === "failed" ? (
          <div className="flex flex-col gap-1">
            <p className="flex items-start gap-1.5 text-sm">
              <AlertTriangle aria-hidden className="mt-0.5 size-4 shrink-0 text-destructive" />
              <span>
                <span className="font-semibold text-destructive">Upload failed.</span> {phase.failure.message}
              </span>
            </p>
            {phase.failure.code ? <span className="font-mono text-xs text-muted-foreground">{phase.failure.code}</span> : null}
          </div>
        ) : null}

        {phase.kind === "refused" ? (
          <p className="flex items-start gap-1.5 text-sm">
            <XCircle aria-hidden className="mt-0.5 size-4 shrink-0 text-destructive" />
            <span>
              <span className="font-semibold text-destructive">Not sent.</span> {phase.message}
            </span>
          </p>
        ) : null}

        {phase.kind === "failed" || phase.kind === "refused" ? (
          <div className="flex flex-wrap gap-2">
            {phase.kind === "failed" ? (
              <Button size="sm" variant="outline" onClick={() => onRetry(item.key)} aria-label={`Retry ${item.name}`}>
                <RotateCcw aria-hidden /> Retry
              </Button>
            ) : null}
            <Button size="sm" variant="ghost" onClick={() => onRemove(item.key)} aria-label={`Dismiss ${item.name}`}>
              <X aria-hidden /> Dismiss
            </Button>
          </div>
        ) : null}
      </div>
    </li>
  );
}

/** A photo's verdict: the badge and each reason in words. */
export function VerdictText({ photo, compact }: { photo: Parameters<typeof verdictOf>[0]; compact?: boolean }) {
  const verdict = verdictOf(photo);
  const Icon = verdict.tone === "success" ? CheckCircle2 : verdict.tone === "destructive" ? XCircle : AlertTriangle;
  return (
    <div className="flex flex-col gap-1">
      <div className="flex items-center gap-2">
        <Icon aria-hidden className={cn("size-4", TONE_TEXT[verdict.tone])} />
        <StatusBadge kind="photo" status={photo.status} />
      </div>
      {verdict.reasons.length ? (
        <ul className={cn("list-disc pl-5 text-foreground/90", compact ? "text-xs leading-relaxed" : "text-sm")}>
          {verdict.reasons.map((reason) => (
            <li key={reason}>{reason}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** The files of this visit: progress while they go, then each one's verdict or failure. */
export function PhotoVerdicts({ items, onRetry, onRemove }: { items: UploadItem[]; onRetry: (key: string) => void; onRemove: (key: string) => void }) {
  if (!items.length) return null;
  return (
    <ul aria-label="Uploads" className="grid gap-3 lg:grid-cols-2">
      {items.map((item) => (
        <Row key={item.key} item={item} onRetry={onRetry} onRemove={onRemove} />
      ))}
    </ul>
  );
}
