"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { RotateCcw, Sparkles, Trash2 } from "lucide-react";

import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { StatusBadge } from "@/components/app/status-badge";
import { presetInfo } from "@/components/training/presets";
import { TrainingProgress } from "@/components/training/training-progress";
import { isRunning, trainingView } from "@/components/training/training-state";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";
import { formatDate } from "@/lib/format";
import { cn } from "@/lib/utils";

import { RenameModelDialog } from "./rename-model-dialog";

type Model = Schemas["Model"];

/** What deleting a model really does (training service: schedule_purge, then step_purge). */
export function DeleteModelText({ model }: { model: Model }) {
  const running = isRunning(model.status);
  const trained = model.status === "succeeded" || model.status === "unavailable";
  return (
    <>
      <p>
        <strong className="text-foreground">“{model.name}” disappears from Visiona at once.</strong>{" "}
        {running ? "Its training is canceled first, and the credits held for it are released. " : ""}
        Right after, in the background, we delete{" "}
        {trained
          ? "its trained weights at our training provider (Replicate: the model and its versions there), our own copy of the weights,"
          : "whatever it left at our training provider (Replicate),"}{" "}
        and the zip of your photos made for its training.
      </p>
      <p>
        <strong className="text-foreground">What stays:</strong> your photos
        {trained ? ", and every image you already made with this model: they stay in your gallery" : ""}.
      </p>
      <p>{trained ? "Credits spent on its training are not refunded. " : running ? "" : "Nothing was charged for it. "}This cannot be undone.</p>
    </>
  );
}

export function ModelCard({ model, highlighted }: { model: Model; highlighted: boolean }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: async () => dataOf(await api.DELETE("/v1/models/{model_id}", { params: { path: { model_id: model.id } } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["models"] });
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });
  const running = isRunning(model.status);
  const view = trainingView(model);
  const preset = presetInfo(model.preset);
  const titleId = `model-${model.id}-name`;

  return (
    <article
      id={model.id}
      aria-label={model.name}
      data-model-status={model.status}
      className={cn("flex scroll-mt-24 flex-col gap-4 rounded-xl border bg-card p-4 sm:p-5", highlighted && "ring-2 ring-accent")}
    >
      <header className="flex flex-wrap items-start justify-between gap-2">
        <div className="min-w-0">
          <h2 id={titleId} className="truncate text-lg font-semibold" title={model.name}>
            {model.name}
          </h2>
          <p className="text-sm text-muted-foreground">
            {preset?.label ?? model.preset} preset · {model.photo_count} photos · {formatDate(model.created_at)}
          </p>
        </div>
        <StatusBadge kind="model" status={model.status} />
      </header>

      {running ? <TrainingProgress modelId={model.id} initial={model} variant="compact" /> : null}

      {model.status === "succeeded" ? (
        <div className="flex flex-col gap-3">
          <p className="text-sm text-muted-foreground">
            Ready{model.finished_at ? ` since ${formatDate(model.finished_at)}` : ""}. Its trigger word is{" "}
            <code className="rounded bg-secondary px-1.5 py-0.5 font-mono text-foreground">{model.trigger_word}</code>: prompts use it to mean you.
          </p>
          {model.sample_urls.length ? (
            <ul className="grid grid-cols-3 gap-2" aria-label={`Sample images of ${model.name}`}>
              {model.sample_urls.slice(0, 6).map((url, index) => (
                <li key={url}>
                  {/* eslint-disable-next-line @next/next/no-img-element -- presigned URLs, shown as they are */}
                  <img src={url} alt={`Sample ${index + 1} of ${model.name}`} className="aspect-square w-full rounded-md object-cover" loading="lazy" />
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}

      {!running && model.status !== "succeeded" ? (
        <div className="flex flex-col gap-1 text-sm">
          <p className={cn(model.status === "failed" ? "text-destructive" : model.status === "unavailable" ? "text-warning" : "text-foreground", "font-medium")}>
            {view.detail}
          </p>
          {model.status === "unavailable" ? <p className="text-muted-foreground">It must be trained again before it can make new images; images already made stay in your gallery.</p> : null}
          {view.ending ? <p className="text-muted-foreground">{view.ending.credits}</p> : null}
        </div>
      ) : null}

      <footer className="mt-auto flex flex-wrap gap-2">
        {model.status === "succeeded" ? (
          <ButtonLink href={`/generate?model=${model.id}`} size="sm">
            <Sparkles aria-hidden /> Generate
          </ButtonLink>
        ) : null}
        {model.status === "unavailable" || model.status === "failed" || model.status === "canceled" ? (
          <ButtonLink href="/train" size="sm" variant="outline">
            <RotateCcw aria-hidden /> Train again
          </ButtonLink>
        ) : null}
        {view.ending?.buyCredits ? (
          <ButtonLink href="/billing" size="sm" variant="outline">Buy credits</ButtonLink>
        ) : null}
        <RenameModelDialog model={model} />
        <ConfirmActionDialog
          trigger={
            <Button variant="ghost" size="sm" aria-label={`Delete ${model.name}`}>
              <Trash2 aria-hidden /> Delete
            </Button>
          }
          title={`Delete “${model.name}”?`}
          confirmLabel="Delete model"
          pendingLabel="Deleting…"
          onConfirm={() => remove.mutateAsync()}
        >
          <DeleteModelText model={model} />
        </ConfirmActionDialog>
      </footer>
    </article>
  );
}
