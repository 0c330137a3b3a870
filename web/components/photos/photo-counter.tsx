"use client";

import { ArrowRight, Wand2 } from "lucide-react";

import { ProblemNotice } from "@/components/app/problem-notice";
import { ButtonLink } from "@/components/ui/button-link";
import { Skeleton } from "@/components/ui/skeleton";
import { cn } from "@/lib/utils";

import { useEveryPhoto } from "./photo-queries";
import { countText, isUsable, MAX_PHOTOS, MIN_PHOTOS } from "./photo-reasons";

/** Where the account stands on the 10-30 rule, and the way to training once it is met. */
export function PhotoCounter() {
  const every = useEveryPhoto();
  if (every.isPending) return <Skeleton className="h-24 w-full" />;
  if (every.isError) return <ProblemNotice error={every.error} onRetry={() => void every.refetch()} />;

  const accepted = every.data.filter(isUsable).length;
  const rejected = every.data.filter((photo) => photo.status === "rejected").length;
  const { text, ready } = countText(accepted);
  const marks = Array.from({ length: MIN_PHOTOS }, (_, i) => i < accepted);

  return (
    <section aria-labelledby="photo-count" className="flex flex-col gap-4 rounded-xl border bg-card p-4 sm:flex-row sm:items-center sm:justify-between sm:p-5">
      <div className="flex flex-col gap-2">
        <h2 id="photo-count" className="text-lg font-semibold" aria-live="polite" data-accepted={accepted}>
          {text}
        </h2>
        <div aria-hidden className="flex gap-1">
          {marks.map((filled, i) => (
            <span key={i} className={cn("h-2 w-5 rounded-full sm:w-7", filled ? "bg-success" : "bg-border")} />
          ))}
        </div>
        <p className="text-sm text-muted-foreground">
          A model trains on {MIN_PHOTOS} to {MAX_PHOTOS} accepted photos.
          {rejected ? ` ${rejected} rejected photo${rejected === 1 ? "" : "s"} will not be used; you can delete ${rejected === 1 ? "it" : "them"}.` : ""}
        </p>
      </div>
      {ready ? (
        <ButtonLink href="/train" size="lg">
          <Wand2 aria-hidden /> Train a model <ArrowRight aria-hidden />
        </ButtonLink>
      ) : null}
    </section>
  );
}
