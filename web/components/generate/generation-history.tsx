"use client";

import { useQuery } from "@tanstack/react-query";
import { History, Sparkles } from "lucide-react";

import { QueryView } from "@/components/app/query-view";
import { StatusBadge } from "@/components/app/status-badge";
import { ProgressiveImage } from "@/components/gallery/progressive-image";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi } from "@/lib/api/client";
import { formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

export const HISTORY_SIZE = 8;

/** The user's most recent generations; choosing one shows it in the results above. */
export function GenerationHistory({ currentId, onSelect }: { currentId: string | null; onSelect: (id: string) => void }) {
  const api = useApi();
  const list = useQuery({
    queryKey: ["generations", "list", HISTORY_SIZE],
    queryFn: async () => dataOf(await api.GET("/v1/generations", { params: { query: { limit: HISTORY_SIZE } } })),
  });

  return (
    <section aria-labelledby="history-title" className="mt-8">
      <h2 id="history-title" className="mb-3 flex items-center gap-2 text-lg font-semibold">
        <History aria-hidden className="size-5 text-accent" /> Recent generations
      </h2>
      <QueryView query={list} loading={<div className="grid gap-3 sm:grid-cols-2">{[0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-20" />)}</div>}>
        {(data) =>
          data.generations.length === 0 ? (
            <p className="rounded-xl border border-dashed p-6 text-center text-sm text-muted-foreground">Your generations will be listed here.</p>
          ) : (
            <ul className="grid gap-3 sm:grid-cols-2">
              {data.generations.map((generation) => {
                const current = generation.id === currentId;
                const thumbs = generation.images.slice(0, 4);
                return (
                  <li key={generation.id}>
                    <button
                      type="button"
                      onClick={() => onSelect(generation.id)}
                      aria-current={current ? "true" : undefined}
                      className={cn(
                        "flex w-full items-center gap-3 rounded-xl border bg-card p-3 text-left outline-none hover:bg-secondary focus-visible:ring-[3px] focus-visible:ring-ring/60",
                        current && "border-primary",
                      )}
                    >
                      <span className="grid size-14 shrink-0 grid-cols-2 gap-0.5 overflow-hidden rounded-md bg-muted">
                        {/* The list answer carries no images (only the single generation does): an icon then. */}
                        {thumbs.length === 0 ? (
                          <span className="col-span-2 flex items-center justify-center text-accent">
                            <Sparkles aria-hidden className="size-5" />
                          </span>
                        ) : null}
                        {thumbs.map((image) => (
                          <ProgressiveImage
                            key={image.id}
                            image={image}
                            src={image.thumbnail_url}
                            alt=""
                            marked={false}
                            className={cn(thumbs.length === 1 && "col-span-2 row-span-2")}
                            style={{ aspectRatio: "1 / 1" }}
                          />
                        ))}
                      </span>
                      <span className="min-w-0 flex-1">
                        <span className="line-clamp-2 text-sm">{generation.prompt}</span>
                        <span className="mt-1 flex flex-wrap items-center gap-2 text-xs text-muted-foreground">
                          <StatusBadge kind="generation" status={generation.status} />
                          {generation.delivered}/{generation.num_outputs} images · {formatRelative(generation.created_at)}
                        </span>
                      </span>
                    </button>
                  </li>
                );
              })}
            </ul>
          )
        }
      </QueryView>
    </section>
  );
}
