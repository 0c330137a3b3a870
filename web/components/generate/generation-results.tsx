"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Ban, CircleSlash, Download, Info, Loader2, ShieldAlert, Sparkles, X } from "lucide-react";
import { useRef } from "react";

import { StatusBadge } from "@/components/app/status-badge";
import { ProblemNotice } from "@/components/app/problem-notice";
import { ProgressiveImage } from "@/components/gallery/progressive-image";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, idempotencyKey, useApi } from "@/lib/api/client";
import { cn } from "@/lib/utils";

import { failureText, isFinal, isRefusal, pollInterval, ratioOf, slotsOf, type Generation, type Slot } from "./generation";

export const REFUSAL_TEXT = "That prompt asks for something Visiona will not make.";

export function useGeneration(id: string | null) {
  const api = useApi();
  return useQuery({
    queryKey: ["generations", "one", id],
    queryFn: async () => dataOf(await api.GET("/v1/generations/{generation_id}", { params: { path: { generation_id: id! } } })),
    enabled: !!id,
    // Live events refresh it at once; this only covers a dropped stream.
    refetchInterval: (query) => pollInterval(query.state.data?.status),
    staleTime: 0,
  });
}

function progressText(generation: Generation): string {
  const n = generation.num_outputs;
  switch (generation.status) {
    case "awaiting_credits":
      return "Reserving your credits…";
    case "queued":
      return "Queued: starting in a moment…";
    case "running":
      return generation.delivered > 0 ? `Creating… ${generation.delivered} of ${n} ready` : `Creating your image${n === 1 ? "" : "s"}…`;
    case "succeeded":
      return generation.delivered < n
        ? `${generation.delivered} of ${n} images delivered; you were charged for ${generation.delivered} only.`
        : `${n === 1 ? "Your image is" : `All ${n} images are`} ready.`;
    case "canceled":
      return "Canceled. Credits for images not made were released.";
    default:
      return "";
  }
}

function SlotView({ slot, generation, onBroken }: { slot: Slot; generation: Generation; onBroken: () => void }) {
  const ratio = ratioOf(generation.aspect_ratio);
  if (slot.state === "delivered") {
    const { image } = slot;
    return (
      <figure className="group relative overflow-hidden rounded-lg border">
        <ProgressiveImage image={image} src={image.url} alt={`Image ${slot.index + 1}: ${generation.prompt}`} eager onBroken={onBroken} />
        <figcaption className="flex items-center justify-between gap-2 border-t bg-card px-2 py-1.5">
          <span className="text-xs text-muted-foreground">
            {image.width}×{image.height}
          </span>
          <span className="flex gap-1">
            <ButtonLink href={`/gallery?image=${image.id}`} variant="ghost" size="sm">Open</ButtonLink>
            <Button asChild variant="ghost" size="sm">
              <a href={image.download_url} download aria-label={`Download image ${slot.index + 1}`}>
                <Download aria-hidden />
              </a>
            </Button>
          </span>
        </figcaption>
      </figure>
    );
  }
  if (slot.state === "waiting") {
    return (
      <div className="overflow-hidden rounded-lg border">
        <div
          data-placeholder
          data-slot-index={slot.index}
          className="relative animate-pulse bg-gradient-to-br from-primary/25 via-muted to-accent/20"
          style={{ aspectRatio: String(ratio) }}
        >
          <span className="absolute inset-0 flex items-center justify-center">
            <Loader2 aria-hidden className="size-6 animate-spin text-foreground/70" />
          </span>
        </div>
        <p className="border-t bg-card px-2 py-1.5 text-xs text-muted-foreground">
          Image {slot.index + 1} of {generation.num_outputs}
        </p>
      </div>
    );
  }
  return (
    <div className="overflow-hidden rounded-lg border border-dashed">
      <div className="flex flex-col items-center justify-center gap-2 p-4 text-center text-sm text-muted-foreground" style={{ aspectRatio: String(ratio) }}>
        <CircleSlash aria-hidden className="size-5" />
        Not delivered, not charged
      </div>
    </div>
  );
}

function PromptUsed({ generation }: { generation: Generation }) {
  if (generation.degraded) {
    return (
      <div className="flex gap-3 rounded-lg border border-info/40 bg-info/10 p-3 text-sm" data-testid="degraded-note">
        <Info aria-hidden className="mt-0.5 size-4 shrink-0 text-info" />
        <div>
          <p className="font-medium">Prompt help was unavailable, so we used your prompt as written.</p>
          <p className="mt-1 break-words text-foreground/90">{generation.final_prompt}</p>
        </div>
      </div>
    );
  }
  if (generation.enhanced) {
    return (
      <div className="rounded-lg border border-primary/40 bg-primary/10 p-3 text-sm" data-testid="enhanced-prompt">
        <p className="flex items-center gap-2 font-medium">
          <Sparkles aria-hidden className="size-4 text-primary" /> Enhanced prompt we used
        </p>
        <p className="mt-1 break-words">{generation.final_prompt}</p>
        {generation.enhancement_reason ? <p className="mt-1 text-xs text-foreground/80">{generation.enhancement_reason}</p> : null}
      </div>
    );
  }
  return (
    <details className="rounded-lg border p-3 text-sm">
      <summary className="cursor-pointer rounded-sm font-medium outline-none focus-visible:ring-[3px] focus-visible:ring-ring/60">Prompt sent to the image model</summary>
      <p className="mt-2 break-words text-muted-foreground">{generation.final_prompt}</p>
    </details>
  );
}

function Refusal({ detail }: { detail?: string | null }) {
  return (
    <div role="alert" className="flex gap-3 rounded-lg border border-destructive/50 bg-destructive/10 p-4" data-testid="prompt-refused">
      <ShieldAlert aria-hidden className="mt-0.5 size-5 shrink-0 text-destructive" />
      <div className="text-sm">
        <p className="font-semibold">{REFUSAL_TEXT}</p>
        {detail ? <p className="mt-1">{detail}</p> : null}
        <p className="mt-1">Change the prompt and try again. Nothing was charged.</p>
      </div>
    </div>
  );
}

/**
 * The results of the current generation, live. DOM contract (browser tests and the benchmark):
 * `<section aria-label="Results" data-testid="generation-results" data-generation-status>`;
 * each delivered image an `<img data-image-id>`, each slot still waiting a `[data-placeholder]`.
 */
export function GenerationResults({
  generationId,
  refusal,
  submitting = null,
}: {
  generationId: string | null;
  refusal: { message: string } | null;
  /** Images requested by a request still on its way: the region shows it, not the last result. */
  submitting?: number | null;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const query = useGeneration(generationId);
  const cancelKey = useRef<{ id: string; key: string } | null>(null);
  const cancel = useMutation({
    mutationFn: async (id: string) => {
      if (cancelKey.current?.id !== id) cancelKey.current = { id, key: idempotencyKey() };
      return dataOf(
        await api.POST("/v1/generations/{generation_id}/cancel", { params: { path: { generation_id: id } }, headers: { "Idempotency-Key": cancelKey.current.key } }),
      );
    },
    onSuccess: (generation) => {
      queryClient.setQueryData(["generations", "one", generation.id], generation);
      void queryClient.invalidateQueries({ queryKey: ["generations", "list"] });
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });

  const generation = refusal || submitting ? undefined : query.data;
  const status = submitting ? "submitting" : refusal ? "refused" : generation ? generation.status : generationId ? "loading" : "idle";

  return (
    <section
      aria-label="Results"
      data-testid="generation-results"
      data-generation-status={status}
      aria-busy={generation ? !isFinal(generation.status) : undefined}
      className="flex min-w-0 flex-col gap-4 rounded-xl border bg-card p-4 sm:p-5"
    >
      <h2 className="text-lg font-semibold">Results</h2>
      {submitting ? (
        <>
          <p className="flex items-center gap-2 text-sm" role="status" aria-live="polite">
            <Loader2 aria-hidden className="size-4 animate-spin text-primary" /> Starting your generation…
          </p>
          <ul className={cn("grid gap-3", submitting === 1 ? "grid-cols-1 sm:max-w-md" : "grid-cols-2")}>
            {Array.from({ length: submitting }, (_, index) => (
              <li key={index}>
                <Skeleton data-placeholder className="aspect-square rounded-lg" />
              </li>
            ))}
          </ul>
        </>
      ) : refusal ? (
        <Refusal detail={refusal.message} />
      ) : !generationId ? (
        <div className="flex flex-col items-center gap-3 rounded-lg border border-dashed p-10 text-center">
          <Sparkles aria-hidden className="size-8 text-accent" />
          <p className="font-medium">Your images will appear here</p>
          <p className="max-w-sm text-sm text-muted-foreground">Write a prompt and press Generate. Images usually arrive in a few seconds.</p>
        </div>
      ) : query.isPending ? (
        <div className="grid grid-cols-2 gap-3">
          <Skeleton className="aspect-square" />
          <Skeleton className="aspect-square" />
        </div>
      ) : query.isError ? (
        <ProblemNotice error={query.error} onRetry={() => void query.refetch()} />
      ) : generation ? (
        <>
          <div className="flex flex-wrap items-center justify-between gap-3">
            <div className="flex min-w-0 items-center gap-3">
              <StatusBadge kind="generation" status={generation.status} />
              <p className="text-sm" role="status" aria-live="polite">
                {progressText(generation)}
              </p>
            </div>
            {!isFinal(generation.status) ? (
              <Button variant="outline" size="sm" onClick={() => cancel.mutate(generation.id)} disabled={cancel.isPending}>
                {cancel.isPending ? <Loader2 aria-hidden className="animate-spin" /> : <X aria-hidden />}
                Cancel
              </Button>
            ) : null}
          </div>

          {generation.status === "failed" ? (
            isRefusal(generation.failure?.reason) ? (
              <Refusal detail={generation.failure?.message} />
            ) : (
              <div role="alert" className="flex gap-3 rounded-lg border border-destructive/50 bg-destructive/10 p-4 text-sm">
                <Ban aria-hidden className="mt-0.5 size-5 shrink-0 text-destructive" />
                <p>{failureText(generation.failure)}</p>
              </div>
            )
          ) : null}

          {generation.status !== "failed" || generation.images.length > 0 ? (
            <ul className={cn("grid gap-3", generation.num_outputs === 1 ? "grid-cols-1 sm:max-w-md" : "grid-cols-2")}>
              {slotsOf(generation).map((slot) => (
                <li key={slot.state === "delivered" ? slot.image.id : `slot-${slot.index}`}>
                  <SlotView slot={slot} generation={generation} onBroken={() => void query.refetch()} />
                </li>
              ))}
            </ul>
          ) : null}

          <PromptUsed generation={generation} />
        </>
      ) : null}
    </section>
  );
}
