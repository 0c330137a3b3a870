"use client";

import { ChevronLeft, ChevronRight, Download, Heart, Trash2 } from "lucide-react";
import type { KeyboardEvent } from "react";

import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { ProblemNotice } from "@/components/app/problem-notice";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogTitle } from "@/components/ui/dialog";
import { Skeleton } from "@/components/ui/skeleton";
import { formatDate } from "@/lib/format";
import { cn } from "@/lib/utils";

import { formatBytes, type Image } from "./pages";
import { ProgressiveImage } from "./progressive-image";
import { useDeleteImage, useFavourite } from "./use-image-actions";

/**
 * One image, large, with what made it and what can be done with it. Opened from a tile or by
 * `?image=<id>` in the URL; ←/→ move through the loaded gallery, Escape closes (Radix Dialog).
 */
export function Lightbox({
  open,
  image,
  loading,
  error,
  position,
  modelName,
  onPrev,
  onNext,
  onClose,
  onDeleted,
  onBroken,
  onCloseFocus,
}: {
  open: boolean;
  image: Image | null;
  loading: boolean;
  error: unknown;
  position: { index: number; count: number; more: boolean } | null;
  modelName: string | null;
  onPrev: (() => void) | null;
  onNext: (() => void) | null;
  onClose: () => void;
  onDeleted: (id: string) => void;
  onBroken: () => void;
  /** Where focus goes when the lightbox closes (it was opened by URL, not by a Dialog trigger). */
  onCloseFocus: () => void;
}) {
  const favourite = useFavourite();
  const remove = useDeleteImage(onDeleted);

  function keys(event: KeyboardEvent<HTMLDivElement>) {
    const target = event.target as HTMLElement;
    // Arrow keys inside a slider, a text field or the delete confirmation (its keys reach here
    // through React's tree, though it is portalled) belong to it.
    if (target.closest("input, textarea, [role=slider], [role=alertdialog]")) return;
    if (event.key === "ArrowLeft" && onPrev) {
      event.preventDefault();
      onPrev();
    } else if (event.key === "ArrowRight" && onNext) {
      event.preventDefault();
      onNext();
    }
  }

  const title = position && position.index >= 0 ? `Image ${position.index + 1} of ${position.count}${position.more ? "+" : ""}` : "Image";

  return (
    <Dialog open={open} onOpenChange={(next) => (next ? null : onClose())}>
      <DialogContent
        className={cn("w-full gap-0 overflow-hidden p-0", image || loading ? "sm:max-w-5xl" : "sm:max-w-md")}
        onKeyDown={keys}
        onCloseAutoFocus={(event) => {
          event.preventDefault();
          onCloseFocus();
        }}
        aria-describedby={image ? "lightbox-prompt" : undefined}
        data-testid="lightbox"
      >
        <div className={cn("grid max-h-[calc(100dvh-2rem)] overflow-y-auto", (image || loading) && "md:grid-cols-[minmax(0,1fr)_20rem]")}>
          <div className={cn("relative flex items-center justify-center bg-black/40 p-2 sm:p-4", !image && !loading && "hidden")}>
            {image ? (
              <ProgressiveImage
                key={image.id}
                image={image}
                src={image.url}
                alt={image.prompt}
                fit="contain"
                eager
                onBroken={onBroken}
                className="max-h-[55dvh] w-full md:max-h-[80dvh]"
              />
            ) : loading ? (
              <Skeleton className="aspect-square w-full max-w-lg" />
            ) : null}
            {onPrev ? (
              <Button variant="secondary" size="icon" className="absolute top-1/2 left-2 -translate-y-1/2 rounded-full opacity-90" onClick={onPrev} aria-label="Previous image">
                <ChevronLeft aria-hidden />
              </Button>
            ) : null}
            {onNext ? (
              <Button variant="secondary" size="icon" className="absolute top-1/2 right-2 -translate-y-1/2 rounded-full opacity-90" onClick={onNext} aria-label="Next image">
                <ChevronRight aria-hidden />
              </Button>
            ) : null}
          </div>

          <div className={cn("flex flex-col gap-4 p-5", (image || loading) && "border-t md:border-t-0 md:border-l")}>
            <DialogTitle className="pr-8">{title}</DialogTitle>
            {error && !image ? (
              <ProblemNotice error={error} />
            ) : !image ? (
              <div className="flex flex-col gap-2">
                <DialogDescription className="sr-only">Loading the image</DialogDescription>
                <Skeleton className="h-4 w-full" />
                <Skeleton className="h-4 w-2/3" />
              </div>
            ) : (
              <>
                <DialogDescription id="lightbox-prompt" className="text-sm break-words text-foreground">
                  {image.prompt}
                </DialogDescription>
                <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm">
                  <dt className="text-muted-foreground">Model</dt>
                  <dd className="truncate">{modelName ?? "—"}</dd>
                  <dt className="text-muted-foreground">Created</dt>
                  <dd>{formatDate(image.created_at)}</dd>
                  <dt className="text-muted-foreground">Size</dt>
                  <dd>
                    {image.width}×{image.height} px · {formatBytes(image.size_bytes)}
                  </dd>
                  <dt className="text-muted-foreground">Format</dt>
                  <dd>{image.content_type.replace("image/", "").toUpperCase()}</dd>
                </dl>
                <div className="mt-auto flex flex-wrap gap-2">
                  <Button
                    variant="outline"
                    aria-pressed={image.favourite}
                    onClick={() => favourite.mutate({ id: image.id, favourite: !image.favourite })}
                  >
                    <Heart aria-hidden className={cn(image.favourite && "fill-destructive text-destructive")} />
                    Favourite
                  </Button>
                  <Button asChild variant="outline">
                    {/* The presigned URL answers with Content-Disposition: attachment; the browser saves it. */}
                    <a href={image.download_url} download>
                      <Download aria-hidden /> Download
                    </a>
                  </Button>
                  <ConfirmActionDialog
                    trigger={
                      <Button variant="outline" className="text-destructive hover:text-destructive">
                        <Trash2 aria-hidden /> Delete
                      </Button>
                    }
                    title="Delete this image?"
                    confirmLabel="Delete image"
                    confirmIcon={<Trash2 aria-hidden />}
                    pendingLabel="Deleting…"
                    onConfirm={() => remove.mutateAsync(image.id)}
                  >
                    <p>The image and its stored files are deleted for good, and its download links stop working. This cannot be undone.</p>
                  </ConfirmActionDialog>
                </div>
                {position && (onPrev || onNext) ? <p className="hidden text-xs text-muted-foreground md:block">Use ← and → to move between images.</p> : null}
              </>
            )}
          </div>
        </div>
      </DialogContent>
    </Dialog>
  );
}
