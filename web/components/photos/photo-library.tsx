"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Camera, ImageOff, Trash2 } from "lucide-react";

import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { EmptyState } from "@/components/app/empty-state";
import { LoadMore } from "@/components/app/load-more";
import { ProblemNotice } from "@/components/app/problem-notice";
import { Button } from "@/components/ui/button";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";
import { formatDate, formatRelative } from "@/lib/format";

import { usePhotoPages } from "./photo-queries";
import { VerdictText } from "./photo-verdicts";

function PhotoCard({ photo, index, busy }: { photo: Schemas["Photo"]; index: number; busy: boolean }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: async () => dataOf(await api.DELETE("/v1/photos/{photo_id}", { params: { path: { photo_id: photo.id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["photos"] }),
  });
  const label = `Photo ${index + 1}, uploaded ${formatDate(photo.created_at)}`;
  return (
    <li data-photo-status={photo.status} data-photo-id={photo.id} className="flex flex-col overflow-hidden rounded-xl border bg-card">
      {photo.preview_url ? (
        // eslint-disable-next-line @next/next/no-img-element -- short-lived presigned URL, shown as it is
        <img src={photo.preview_url} alt={label} loading="lazy" className="aspect-square w-full bg-muted object-cover" />
      ) : (
        <div role="img" aria-label={`${label} (no preview)`} className="flex aspect-square w-full items-center justify-center bg-muted">
          <ImageOff aria-hidden className="size-8 text-muted-foreground" />
        </div>
      )}
      <div className="flex flex-1 flex-col gap-2 p-3">
        {busy ? <p className="text-sm text-muted-foreground">Uploading from this page…</p> : <VerdictText photo={photo} compact />}
        <div className="mt-auto flex flex-wrap items-center justify-between gap-x-2 gap-y-1 pt-1">
          <span className="text-xs whitespace-nowrap text-muted-foreground" title={formatDate(photo.created_at)}>
            {formatRelative(photo.created_at)}
          </span>
          {busy ? null : <ConfirmActionDialog
            trigger={
              <Button size="sm" variant="ghost" aria-label={`Delete photo ${index + 1}`}>
                <Trash2 aria-hidden /> Delete
              </Button>
            }
            title="Delete this photo?"
            confirmLabel="Delete photo"
            pendingLabel="Deleting…"
            onConfirm={() => remove.mutateAsync()}
          >
            <p>The photo and its stored file are deleted from Visiona. This cannot be undone.</p>
            <p>Models already trained with it keep what they learnt; new trainings will not use it.</p>
          </ConfirmActionDialog>}
        </div>
      </div>
    </li>
  );
}

/** Every photo on the account: thumbnail, verdict, delete; a page at a time. */
export function PhotoLibrary({ busyIds }: { busyIds: ReadonlySet<string> }) {
  const pages = usePhotoPages();

  if (!pages.data) {
    if (pages.isError) return <ProblemNotice error={pages.error} onRetry={() => void pages.refetch()} />;
    return (
      <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-4" role="status" aria-busy="true" aria-label="Loading your photos">
        {Array.from({ length: 8 }, (_, i) => (
          <Skeleton key={i} className="aspect-[3/4]" />
        ))}
      </div>
    );
  }

  const photos = pages.data.pages.flatMap((page) => page.photos);
  if (!photos.length) {
    return (
      <EmptyState icon={Camera} title="No photos yet">
        Add 10 to 30 photos of yourself above. Each one is checked as it arrives: one face, sharp, big enough.
      </EmptyState>
    );
  }
  return (
    <div className="flex flex-col gap-4">
      <ul className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-4">
        {photos.map((photo, index) => (
          <PhotoCard key={photo.id} photo={photo} index={index} busy={busyIds.has(photo.id)} />
        ))}
      </ul>
      <LoadMore pages={pages} label="Show more photos" showRefreshError />
    </div>
  );
}
