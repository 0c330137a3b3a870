"use client";

import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Heart, ImageIcon, Loader2, SearchX } from "lucide-react";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";

import { EmptyState } from "@/components/app/empty-state";
import { PageHeader } from "@/components/app/page-header";
import { ProblemNotice } from "@/components/app/problem-notice";
import { useModelList } from "@/components/models/use-model-list";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Label } from "@/components/ui/label";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Skeleton } from "@/components/ui/skeleton";
import { Switch } from "@/components/ui/switch";
import { dataOf, useApi } from "@/lib/api/client";
import { cn } from "@/lib/utils";

import { Lightbox } from "./lightbox";
import { filtersFromSearch, filtersToSearch, flattenImages, hasFilters, imageQuery, neighbours, NO_FILTERS, refreshDelay, type GalleryFilters, type Image } from "./pages";
import { ProgressiveImage } from "./progressive-image";
import { useFavourite } from "./use-image-actions";

const ALL_MODELS = "all";

function shortPrompt(prompt: string): string {
  return prompt.length > 80 ? `${prompt.slice(0, 77)}…` : prompt;
}

function Tile({ image, onOpen, onBroken }: { image: Image; onOpen: (id: string) => void; onBroken: () => void }) {
  const favourite = useFavourite();
  return (
    <li className="group relative">
      <button
        type="button"
        onClick={() => onOpen(image.id)}
        data-open-image={image.id}
        aria-label={`Open image: ${shortPrompt(image.prompt)}`}
        className="block w-full overflow-hidden rounded-lg border outline-none focus-visible:ring-[3px] focus-visible:ring-ring/70"
      >
        <ProgressiveImage
          image={image}
          src={image.thumbnail_url}
          alt={image.prompt}
          onBroken={onBroken}
          style={{ aspectRatio: "1 / 1" }}
          imgClassName="transition-transform duration-300 group-hover:scale-[1.03]"
        />
      </button>
      <Button
        type="button"
        variant="secondary"
        size="icon"
        aria-pressed={image.favourite}
        aria-label="Favourite"
        onClick={() => favourite.mutate({ id: image.id, favourite: !image.favourite })}
        className={cn(
          "absolute top-2 right-2 size-9 rounded-full bg-background/80 backdrop-blur transition-opacity hover:bg-background",
          !image.favourite && "opacity-100 sm:opacity-0 sm:group-focus-within:opacity-100 sm:group-hover:opacity-100",
        )}
      >
        <Heart aria-hidden className={cn("size-4", image.favourite && "fill-destructive text-destructive")} />
      </Button>
    </li>
  );
}

/** The Gallery: every image the user made, newest first, with infinite scroll and a lightbox. */
export function Gallery() {
  const api = useApi();
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const filters = useMemo(() => filtersFromSearch(params), [params]);
  const openId = params.get("image");

  const models = useModelList();

  const query = useInfiniteQuery({
    queryKey: ["images", "gallery", filters.modelId ?? ALL_MODELS, filters.favourites],
    queryFn: async ({ pageParam }) => dataOf(await api.GET("/v1/images", { params: { query: imageQuery(filters, pageParam) } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // Presigned URLs expire (urls_expire_at): re-read (re-sign) them before they do.
    staleTime: (q) => refreshDelay(flattenImages(q.state.data?.pages)) || 15_000,
    refetchInterval: (q) => refreshDelay(flattenImages(q.state.data?.pages)),
  });
  const { fetchNextPage, hasNextPage, isFetchingNextPage } = query;
  const images = useMemo(() => flattenImages(query.data?.pages), [query.data]);

  // The lightbox's image: from the loaded pages, or on its own (a link from the dashboard, or
  // an image outside the current filters).
  const [deleted, setDeleted] = useState<ReadonlySet<string>>(() => new Set());
  const listed = openId ? (images.find((image) => image.id === openId) ?? null) : null;
  const single = useQuery({
    queryKey: ["images", "one", openId],
    queryFn: async () => dataOf(await api.GET("/v1/images/{image_id}", { params: { path: { image_id: openId! } } })),
    enabled: !!openId && !listed && !query.isPending && !deleted.has(openId),
    staleTime: (q) => (q.state.data ? refreshDelay([q.state.data]) || 15_000 : 0),
  });
  const current = listed ?? single.data ?? null;
  const around = neighbours(images, listed ? openId : null);

  // The last image shown in the lightbox: its tile gets focus back when the lightbox closes.
  const lastShown = useRef<string | null>(null);
  useEffect(() => {
    if (openId) lastShown.current = openId;
  }, [openId]);
  const returnFocus = useCallback(() => {
    const id = lastShown.current;
    const tile = id ? document.querySelector<HTMLElement>(`[data-open-image="${CSS.escape(id)}"]`) : null;
    tile?.focus();
  }, []);

  const navigate = useCallback(
    (next: URLSearchParams) => {
      const query = next.toString();
      router.replace(query ? `${pathname}?${query}` : pathname, { scroll: false });
    },
    [pathname, router],
  );
  const setFilters = (next: GalleryFilters) => {
    const search = filtersToSearch(next, params.toString());
    search.delete("image");
    navigate(search);
  };
  const openImage = useCallback(
    (id: string | null) => {
      const search = new URLSearchParams(params.toString());
      if (id) search.set("image", id);
      else search.delete("image");
      navigate(search);
    },
    [navigate, params],
  );

  // Near the end of what is loaded, the lightbox loads the next page so → keeps going.
  useEffect(() => {
    if (around.index >= 0 && around.index >= images.length - 3 && hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [around.index, images.length, hasNextPage, isFetchingNextPage, fetchNextPage]);

  // Infinite scroll: a sentinel below the grid loads the next page as it nears the viewport.
  // The observer is renewed after each page, so a sentinel still in view loads the next one too.
  const sentinel = useRef<HTMLDivElement>(null);
  const pageCount = query.data?.pages.length ?? 0;
  useEffect(() => {
    const node = sentinel.current;
    if (!node || !hasNextPage || isFetchingNextPage || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void fetchNextPage();
    }, { rootMargin: "800px 0px" });
    observer.observe(node);
    return () => observer.disconnect();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage, pageCount]);

  const modelNames = useMemo(() => new Map((models.data?.models ?? []).map((m) => [m.id, m.name])), [models.data]);
  const refresh = () => void query.refetch();

  return (
    <>
      <PageHeader
        title="Gallery"
        description="Everything you have created. Favourite the best, download them, or delete what you do not want."
        actions={
          <ButtonLink href="/generate" variant="outline">Create more</ButtonLink>
        }
      />

      {/* Filters are pointless before the first image: the empty state says what to do instead. */}
      {query.isPending || images.length > 0 || hasFilters(filters) ? (
        <div role="group" aria-label="Filters" className="mb-5 flex flex-wrap items-end gap-4 rounded-xl border bg-card p-3 sm:p-4">
          <div className="flex min-w-48 flex-1 flex-col gap-2 sm:max-w-xs">
            <Label htmlFor="gallery-model">Model</Label>
            <Select value={filters.modelId ?? ALL_MODELS} onValueChange={(value) => setFilters({ ...filters, modelId: value === ALL_MODELS ? null : value })}>
              <SelectTrigger id="gallery-model">
                <SelectValue />
              </SelectTrigger>
              <SelectContent>
                <SelectItem value={ALL_MODELS}>All models</SelectItem>
                {models.data?.models.map((m) => (
                  <SelectItem key={m.id} value={m.id}>
                    {m.name}
                  </SelectItem>
                ))}
                {filters.modelId && models.data && !modelNames.has(filters.modelId) ? <SelectItem value={filters.modelId}>A deleted model</SelectItem> : null}
              </SelectContent>
            </Select>
          </div>
          <div className="flex h-10 items-center gap-3">
            <Switch id="gallery-favourites" checked={filters.favourites} onCheckedChange={(checked) => setFilters({ ...filters, favourites: checked })} />
            <Label htmlFor="gallery-favourites">
              <Heart aria-hidden className="size-4 text-destructive" /> Favourites only
            </Label>
          </div>
          {hasFilters(filters) ? (
            <Button variant="link" className="px-0" onClick={() => setFilters(NO_FILTERS)}>
              Clear filters
            </Button>
          ) : null}
        </div>
      ) : null}

      <section aria-label="Images" data-testid="gallery" aria-busy={query.isFetching}>
        {query.isPending ? (
          <ul className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-4">
            {Array.from({ length: 8 }, (_, i) => (
              <li key={i}>
                <Skeleton className="aspect-square" />
              </li>
            ))}
          </ul>
        ) : query.isError && images.length === 0 ? (
          <ProblemNotice error={query.error} onRetry={refresh} />
        ) : images.length === 0 ? (
          hasFilters(filters) ? (
            <EmptyState
              icon={SearchX}
              title="Nothing matches these filters"
              action={
                <Button variant="outline" onClick={() => setFilters(NO_FILTERS)}>
                  Show all images
                </Button>
              }
            >
              {filters.favourites ? "Mark images with the heart to find them here." : "This model has no images yet."}
            </EmptyState>
          ) : (
            <EmptyState
              icon={ImageIcon}
              title="Your gallery is empty"
              action={
                <ButtonLink href="/generate">Go to Generate</ButtonLink>
              }
            >
              <p>No images yet — create your first on the Generate page.</p>
            </EmptyState>
          )
        ) : (
          <>
            <ul className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-4">
              {images.map((image) => (
                <Tile key={image.id} image={image} onOpen={openImage} onBroken={refresh} />
              ))}
            </ul>
            <div ref={sentinel} aria-hidden className="h-px" />
            <div className="mt-6 flex flex-col items-center gap-2">
              {query.isFetchNextPageError ? <ProblemNotice error={query.error} onRetry={() => void fetchNextPage()} /> : null}
              {hasNextPage ? (
                <Button variant="outline" onClick={() => void fetchNextPage()} disabled={isFetchingNextPage}>
                  {isFetchingNextPage ? <Loader2 aria-hidden className="animate-spin" /> : null}
                  {isFetchingNextPage ? "Loading more…" : "Load more"}
                </Button>
              ) : (
                <p className="text-sm text-muted-foreground">
                  {images.length} image{images.length === 1 ? "" : "s"}
                  {hasFilters(filters) ? " match" : ""} · that is all
                </p>
              )}
            </div>
          </>
        )}
      </section>

      <Lightbox
        open={!!openId}
        image={current}
        loading={!!openId && !current && (query.isPending || single.isPending)}
        error={single.error}
        position={listed ? { index: around.index, count: images.length, more: !!hasNextPage } : null}
        modelName={current ? (modelNames.get(current.model_id) ?? null) : null}
        onPrev={around.prev ? () => openImage(around.prev!.id) : null}
        onNext={around.next ? () => openImage(around.next!.id) : null}
        onClose={() => openImage(null)}
        onDeleted={(id) => {
          setDeleted((before) => new Set(before).add(id));
          openImage(around.next?.id ?? around.prev?.id ?? null);
        }}
        onBroken={() => (listed ? refresh() : void single.refetch())}
        onCloseFocus={returnFocus}
      />
    </>
  );
}
