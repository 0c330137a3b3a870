"use client";

import { Boxes, Wand2 } from "lucide-react";
import { useEffect, useState } from "react";

import { EmptyState } from "@/components/app/empty-state";
import { LoadMore } from "@/components/app/load-more";
import { PageHeader } from "@/components/app/page-header";
import { ProblemNotice } from "@/components/app/problem-notice";
import { ButtonLink } from "@/components/ui/button-link";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi } from "@/lib/api/client";
import { useCursorPages } from "@/lib/api/pages";

import { ModelCard } from "./model-card";

export const MODEL_PAGE_SIZE = 20;

export function useModelPages() {
  const api = useApi();
  return useCursorPages(["models", "pages"], async (cursor) =>
    dataOf(await api.GET("/v1/models", { params: { query: { limit: MODEL_PAGE_SIZE, ...(cursor ? { cursor } : {}) } } })),
  );
}

/** The model the address points at (`/models#<id>`, as the dashboard links), once it is drawn. */
function useTargetedModel(ready: boolean): string | null {
  const [target, setTarget] = useState<string | null>(null);
  useEffect(() => {
    const read = () => setTarget(window.location.hash.slice(1) || null);
    read();
    window.addEventListener("hashchange", read);
    return () => window.removeEventListener("hashchange", read);
  }, []);
  useEffect(() => {
    if (!ready || !target) return;
    document.getElementById(target)?.scrollIntoView({ block: "start" });
  }, [ready, target]);
  return target;
}

export function ModelsPage() {
  const pages = useModelPages();
  const target = useTargetedModel(Boolean(pages.data));
  const models = pages.data?.pages.flatMap((page) => page.models) ?? [];

  return (
    <>
      <PageHeader
        title="Models"
        description="Your trained models: follow a training, rename or delete a model, or create images with it."
        actions={
          <ButtonLink href="/train">
            <Wand2 aria-hidden /> Train a model
          </ButtonLink>
        }
      />
      {!pages.data ? (
        pages.isError ? (
          <ProblemNotice error={pages.error} onRetry={() => void pages.refetch()} />
        ) : (
          <div className="grid gap-4 md:grid-cols-2" role="status" aria-label="Loading your models">
            {[0, 1, 2, 3].map((i) => (
              <Skeleton key={i} className="h-48" />
            ))}
          </div>
        )
      ) : models.length === 0 ? (
        <EmptyState
          icon={Boxes}
          title="No models yet"
          action={
            <ButtonLink href="/train" variant="outline">Train your first model</ButtonLink>
          }
        >
          A model learns your face from 10 to 30 of your photos. Training the fast preset takes about a quarter of an hour.
        </EmptyState>
      ) : (
        <div className="flex flex-col gap-4">
          <div className="grid gap-4 md:grid-cols-2">
            {models.map((model) => (
              <ModelCard key={model.id} model={model} highlighted={model.id === target} />
            ))}
          </div>
          <LoadMore pages={pages} label="Show more models" showRefreshError />
        </div>
      )}
    </>
  );
}
