"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Check, Coins, RotateCcw, Sparkles, XCircle } from "lucide-react";
import { useEffect, useRef, useState } from "react";

import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { ProblemNotice } from "@/components/app/problem-notice";
import { StatusBadge } from "@/components/app/status-badge";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Progress } from "@/components/ui/progress";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, idempotencyKey, useApi, type Schemas } from "@/lib/api/client";
import { useLiveEvents } from "@/lib/events/use-event-stream";
import { formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

import { isRunning, STEPS, trainingView, type Tone } from "./training-state";

type Model = Schemas["Model"];

/** The fallback when live events do not arrive (a proxy, a dropped stream): re-read slowly. */
export const POLL_MS = 10_000;
const TICK_MS = 15_000;

export function modelQueryKey(modelId: string) {
  return ["models", "detail", modelId] as const;
}

const TONE_TEXT: Record<Tone, string> = {
  info: "text-foreground",
  success: "text-success",
  warning: "text-warning",
  destructive: "text-destructive",
  muted: "text-foreground",
};

/** A past moment, relative to `now` (a server clock a little ahead never reads as "in 3 seconds"). */
function ago(iso: string, now: number): string {
  return formatRelative(iso, Math.max(now, Date.parse(iso)));
}

/** When the model entered its current status, where the API tells (else: unknown, null). */
function enteredAt(model: Model): number | null {
  const at = model.status === "queued" ? model.queued_at : model.status === "awaiting_credits" || model.status === "preparing" ? model.created_at : null;
  return at ? Date.parse(at) : null;
}

function Stepper({ step, status }: { step: number; status: string }) {
  const ended = status === "failed" || status === "canceled";
  return (
    <ol className="grid grid-cols-4 gap-1 text-xs sm:text-sm" aria-label="Training steps">
      {STEPS.map((label, index) => {
        const done = index < step || status === "succeeded";
        const current = index === step && !done;
        return (
          <li key={label} aria-current={current ? "step" : undefined} className="flex flex-col items-center gap-1 text-center">
            <span
              aria-hidden
              className={cn(
                "flex size-7 items-center justify-center rounded-full border text-xs font-semibold",
                done && "border-success bg-success/15 text-success",
                current && !ended && "border-primary bg-primary/15 text-primary",
                current && ended && "border-destructive bg-destructive/15 text-destructive",
                !done && !current && "text-muted-foreground",
              )}
            >
              {done ? <Check className="size-4" /> : current && ended ? <XCircle className="size-4" /> : index + 1}
            </span>
            <span className={cn(current || done ? "text-foreground" : "text-muted-foreground")}>
              {label}
              <span className="sr-only">{done ? " (done)" : current ? (ended ? " (stopped here)" : " (now)") : ""}</span>
            </span>
          </li>
        );
      })}
    </ol>
  );
}

/**
 * One model's training, live: the steps, the progress bar, what is happening in words, and the
 * way forward (cancel while it runs; generate when ready; buy credits or train again when it
 * ended without a model). Follows `training.model.progressed.v1` from the event stream, and
 * re-reads the model every 10 s while it runs in case events do not arrive.
 */
export function TrainingProgress({ modelId, initial, variant = "full" }: { modelId: string; initial?: Model; variant?: "full" | "compact" }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const key = modelQueryKey(modelId);
  const query = useQuery({
    queryKey: key,
    queryFn: async () => dataOf(await api.GET("/v1/models/{model_id}", { params: { path: { model_id: modelId } } })),
    initialData: initial,
    refetchInterval: (q) => (q.state.data && !isRunning(q.state.data.status) ? false : POLL_MS),
  });
  const model = query.data;

  // Stall detection: when did anything last change (or any event about it arrive)?
  const [now, setNow] = useState(() => Date.now());
  const signature = model ? `${model.status}:${model.progress}` : "";
  const [change, setChange] = useState(() => ({ signature, at: (model && enteredAt(model)) ?? now }));
  if (change.signature !== signature) setChange({ signature, at: now });
  const running = model ? isRunning(model.status) : false;
  // The clock ticks while it runs (stall detection) and, on the full view, for its timings.
  const ticking = running || variant === "full";
  useEffect(() => {
    if (!ticking) return;
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [ticking]);

  useLiveEvents((event) => {
    if (event.type !== "training.model.progressed.v1" || event.data.model_id !== modelId) return;
    const status = typeof event.data.status === "string" ? event.data.status : null;
    const progress = typeof event.data.progress === "number" ? event.data.progress : null;
    queryClient.setQueryData<Model>(key, (old) => {
      if (!old || !status || !isRunning(old.status)) return old;
      return { ...old, status: status as Model["status"], progress: progress ?? old.progress };
    });
    const at = Date.now();
    setNow(at);
    setChange((previous) => ({ ...previous, at }));
  });

  const cancelKey = useRef<string | null>(null);
  const cancel = useMutation({
    mutationFn: async () => {
      cancelKey.current ??= idempotencyKey();
      return dataOf(
        await api.POST("/v1/models/{model_id}/cancel", { params: { path: { model_id: modelId } }, headers: { "Idempotency-Key": cancelKey.current } }),
      );
    },
    onSuccess: (updated) => {
      queryClient.setQueryData(key, updated);
      void queryClient.invalidateQueries({ queryKey: ["models"] });
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });

  if (!model) {
    if (query.isError) return <ProblemNotice error={query.error} onRetry={() => void query.refetch()} />;
    return <Skeleton className={variant === "full" ? "h-56" : "h-20"} />;
  }

  const view = trainingView(model, Math.max(0, now - change.at));
  const compact = variant === "compact";

  return (
    <div className="flex flex-col gap-4" data-model-status={model.status} data-stalled={view.stalled || undefined}>
      {compact ? null : (
        <div className="flex flex-wrap items-center justify-between gap-2">
          <h2 className="text-xl font-semibold">{model.name}</h2>
          <StatusBadge kind="model" status={model.status} />
        </div>
      )}
      {compact ? null : <Stepper step={view.step} status={model.status} />}

      <Progress
        value={view.percent}
        aria-label={`Training progress of ${model.name}`}
        getValueLabel={(value) => `${view.headline}${model.status === "training" ? "" : ` (${value}%)`}`}
        indicatorClassName={cn(
          model.status === "failed" && "from-destructive to-destructive",
          model.status === "canceled" && "from-muted-foreground to-muted-foreground",
          view.stalled && "from-warning to-warning",
          model.status === "succeeded" && "from-success to-success",
        )}
      />

      <div aria-live="polite" className="flex flex-col gap-1">
        <p className={cn("font-semibold", TONE_TEXT[view.tone])}>{view.stalled ? `${view.headline} — no news for a while` : view.headline}</p>
        {view.detail ? <p className="text-sm text-muted-foreground">{view.detail}</p> : null}
        {view.ending ? <p className="text-sm font-medium">{view.ending.credits}</p> : null}
        {model.failure?.message && model.status === "failed" && !compact ? (
          <p className="text-xs text-muted-foreground">Details: {model.failure.message}</p>
        ) : null}
      </div>

      {cancel.isError ? <ProblemNotice error={cancel.error} onRetry={() => cancel.mutate()} /> : null}

      <div className="flex flex-wrap items-center gap-2">
        {model.status === "succeeded" ? (
          <ButtonLink href={`/generate?model=${model.id}`}>
            <Sparkles aria-hidden /> Generate with {compact ? "it" : model.name}
          </ButtonLink>
        ) : null}
        {view.ending?.buyCredits ? (
          <ButtonLink href="/billing">
            <Coins aria-hidden /> Buy credits
          </ButtonLink>
        ) : null}
        {view.ending?.retrain || model.status === "unavailable" ? (
          <ButtonLink href="/train" variant="outline">
            <RotateCcw aria-hidden /> Train again
          </ButtonLink>
        ) : null}
        {view.running ? (
          <ConfirmActionDialog
            trigger={
              <Button variant="outline" disabled={cancel.isPending}>
                <XCircle aria-hidden /> Cancel training
              </Button>
            }
            title={`Cancel the training of “${model.name}”?`}
            confirmLabel="Cancel training"
            pendingLabel="Canceling…"
            cancelLabel="Keep training"
            onConfirm={() => cancel.mutateAsync()}
          >
            <p>The training stops and no model is made. The credits held for it are released: you are not charged.</p>
            <p>Your photos stay; you can start a new training at any time.</p>
          </ConfirmActionDialog>
        ) : null}
        {!compact ? (
          <span className="text-xs text-muted-foreground">
            Started {ago(model.created_at, now)}
            {model.finished_at ? ` · ended ${ago(model.finished_at, now)}` : ""}
          </span>
        ) : null}
      </div>
    </div>
  );
}
