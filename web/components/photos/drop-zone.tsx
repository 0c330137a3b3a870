"use client";

import { ImageUp } from "lucide-react";
import { useRef, useState, type DragEvent } from "react";

import { buttonVariants } from "@/components/ui/button";
import { cn } from "@/lib/utils";

import { ACCEPT_ATTRIBUTE, formatBytes } from "./upload-queue";

/**
 * Drag photos here, or choose them with the system's file picker (a real file input, labelled
 * "Choose photos", under a button-looking label: keyboard and screen readers reach the input).
 */
export function DropZone({ onFiles, maxBytes, disabled }: { onFiles: (files: File[]) => void; maxBytes: number; disabled?: boolean }) {
  const [over, setOver] = useState(false);
  const depth = useRef(0);

  const hasFiles = (event: DragEvent) => Array.from(event.dataTransfer.types).includes("Files");

  return (
    <div
      onDragEnter={(event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        depth.current += 1;
        setOver(true);
      }}
      onDragOver={(event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = disabled ? "none" : "copy";
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setOver(false);
      }}
      onDrop={(event) => {
        event.preventDefault();
        depth.current = 0;
        setOver(false);
        if (!disabled && event.dataTransfer.files.length) onFiles(Array.from(event.dataTransfer.files));
      }}
      data-dragging={over || undefined}
      className={cn(
        "flex flex-col items-center gap-4 rounded-xl border-2 border-dashed p-6 text-center transition-colors sm:p-10",
        over ? "border-accent bg-accent/10" : "border-border bg-card/40",
      )}
    >
      <ImageUp aria-hidden className={cn("size-10", over ? "text-accent" : "text-primary")} />
      <div className="flex flex-col gap-1">
        <p className="text-lg font-semibold">
          {over ? (
            "Drop to upload"
          ) : (
            <>
              <span className="sm:hidden">Add your photos</span>
              <span className="hidden sm:inline">Drag your photos here, or choose them</span>
            </>
          )}
        </p>
        <p className="text-sm text-muted-foreground">
          JPEG, PNG, WebP or HEIC · up to {formatBytes(maxBytes)} each · 10 to 30 photos of just you
        </p>
      </div>
      <div>
        <input
          id="photo-files"
          type="file"
          multiple
          accept={ACCEPT_ATTRIBUTE}
          disabled={disabled}
          className="peer sr-only"
          onChange={(event) => {
            const chosen = event.currentTarget.files;
            if (chosen?.length) onFiles(Array.from(chosen));
            // The same file can be chosen again (after a failure, for instance).
            event.currentTarget.value = "";
          }}
        />
        <label
          htmlFor="photo-files"
          className={cn(
            buttonVariants({ size: "lg" }),
            "cursor-pointer peer-focus-visible:ring-[3px] peer-focus-visible:ring-ring/60 peer-disabled:cursor-not-allowed peer-disabled:opacity-50",
          )}
        >
          Choose photos
        </label>
      </div>
      <ul className="grid gap-1 text-left text-sm text-muted-foreground sm:grid-cols-3 sm:gap-4">
        <li>• Only you in the picture, face clearly visible</li>
        <li>• Different angles, light and backgrounds</li>
        <li>• Sharp, at least 512 pixels on the short side</li>
      </ul>
    </div>
  );
}
