"use client";

import { ImageOff } from "lucide-react";
import { useCallback, useMemo, useState, type CSSProperties } from "react";

import type { Schemas } from "@/lib/api/client";
import { blurhashAverageColor, blurhashDataUrl } from "@/lib/blurhash";
import { cn } from "@/lib/utils";

type Image = Schemas["Image"];

/**
 * An image that paints its BlurHash at once and the real picture when it has loaded.
 *
 * DOM contract (browser tests and the generation benchmark rely on it): the placeholder is its
 * own element with `data-placeholder`, removed once the picture has loaded; the picture is an
 * `<img data-image-id>` rendered only when its URL is known. Presigned URLs are re-signed on
 * every refetch: a new URL for the same image keeps what is on screen (no placeholder flash).
 */
export function ProgressiveImage({
  image,
  src,
  alt,
  className,
  imgClassName,
  fit = "cover",
  eager = false,
  onBroken,
  style,
  marked = true,
}: {
  image: Pick<Image, "id" | "blurhash" | "width" | "height">;
  src: string | null | undefined;
  alt: string;
  className?: string;
  imgClassName?: string;
  fit?: "cover" | "contain";
  eager?: boolean;
  /** The URL failed to load (often: its signature expired); the caller may refetch. */
  onBroken?: () => void;
  style?: CSSProperties;
  /** Carry `data-image-id` (false for decorative copies, e.g. history thumbnails). */
  marked?: boolean;
}) {
  const [loaded, setLoaded] = useState(false);
  const [broken, setBroken] = useState(false);
  const placeholder = useMemo(() => blurhashDataUrl(image.blurhash, image.width, image.height), [image.blurhash, image.width, image.height]);
  const average = useMemo(() => blurhashAverageColor(image.blurhash), [image.blurhash]);

  // An image already in the browser's cache may be complete before React attaches onLoad.
  const attach = useCallback((node: HTMLImageElement | null) => {
    if (node?.complete && node.naturalWidth > 0) setLoaded(true);
  }, []);

  return (
    <div
      className={cn("relative overflow-hidden", fit === "cover" && "bg-muted", className)}
      style={{
        aspectRatio: `${image.width || 1} / ${image.height || 1}`,
        // Contained images leave bands beside them: those stay the surface's own colour.
        backgroundColor: fit === "cover" ? (average ?? undefined) : undefined,
        ...style,
      }}
    >
      {!loaded ? (
        <div
          data-placeholder
          aria-hidden
          className={cn("absolute inset-0 bg-center bg-no-repeat", fit === "cover" ? "bg-cover" : "bg-contain", !placeholder && "animate-pulse")}
          style={placeholder ? { backgroundImage: `url("${placeholder}")` } : undefined}
        />
      ) : null}
      {src ? (
        // eslint-disable-next-line @next/next/no-img-element -- presigned S3 URLs, shown as they are
        <img
          ref={attach}
          data-image-id={marked ? image.id : undefined}
          src={src}
          alt={alt}
          width={image.width || undefined}
          height={image.height || undefined}
          loading={eager ? "eager" : "lazy"}
          decoding="async"
          onLoad={() => {
            setLoaded(true);
            setBroken(false);
          }}
          onError={() => {
            setBroken(true);
            onBroken?.();
          }}
          className={cn(
            "absolute inset-0 size-full transition-opacity duration-300",
            fit === "cover" ? "object-cover" : "object-contain",
            loaded ? "opacity-100" : "opacity-0",
            imgClassName,
          )}
        />
      ) : null}
      {broken && !loaded ? (
        <div className="absolute inset-0 flex items-center justify-center bg-background/60 text-muted-foreground">
          <ImageOff aria-hidden className="size-6" />
          <span className="sr-only">Image could not be loaded</span>
        </div>
      ) : null}
    </div>
  );
}
