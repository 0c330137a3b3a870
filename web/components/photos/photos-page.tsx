"use client";

import { useMemo } from "react";

import { PageHeader } from "@/components/app/page-header";
import { Button } from "@/components/ui/button";

import { DropZone } from "./drop-zone";
import { PhotoCounter } from "./photo-counter";
import { PhotoLibrary } from "./photo-library";
import { PhotoVerdicts } from "./photo-verdicts";
import { isActive, isFinished, summarize, summaryText } from "./upload-queue";
import { useUploadQueue } from "./use-upload-queue";

export function PhotosPage() {
  const queue = useUploadQueue();
  const summary = summarize(queue.state);
  const busyIds = useMemo(
    () => new Set(queue.state.items.filter((item) => isActive(item) || item.phase.kind === "failed").flatMap((item) => (item.slot ? [item.slot.photoId] : []))),
    [queue.state.items],
  );
  const finished = queue.state.items.some(isFinished);

  return (
    <>
      <PageHeader title="Photos" description="The photos your model learns your face from. Each one is checked as it arrives." />
      <div className="flex flex-col gap-6">
        <PhotoCounter />
        <DropZone onFiles={queue.add} maxBytes={queue.state.maxBytes} />

        {summary.total ? (
          <section aria-labelledby="uploads-title" className="flex flex-col gap-3">
            <div className="flex flex-wrap items-center justify-between gap-2">
              <div>
                <h2 id="uploads-title" className="text-lg font-semibold">
                  This upload
                </h2>
                <p className="text-sm text-muted-foreground" role="status" aria-live="polite">
                  {summaryText(summary)}
                </p>
              </div>
              {finished ? (
                <Button variant="outline" size="sm" onClick={queue.clearFinished}>
                  Clear finished
                </Button>
              ) : null}
            </div>
            <PhotoVerdicts items={queue.state.items} onRetry={queue.retry} onRemove={queue.remove} />
          </section>
        ) : null}

        <section aria-labelledby="library-title" className="flex flex-col gap-3">
          <h2 id="library-title" className="text-lg font-semibold">
            Your photos
          </h2>
          <PhotoLibrary busyIds={busyIds} />
        </section>
      </div>
    </>
  );
}
