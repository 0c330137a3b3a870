import type { Metadata } from "next";
import { Suspense } from "react";

import { Gallery } from "@/components/gallery/gallery";

export const metadata: Metadata = { title: "Gallery" };

export default function GalleryPage() {
  // Suspense: the screen reads its filters and the open image from the URL (useSearchParams).
  return (
    <Suspense>
      <Gallery />
    </Suspense>
  );
}
