import type { Metadata } from "next";
import { Suspense } from "react";

import { Generate } from "@/components/generate/generate";

export const metadata: Metadata = { title: "Generate" };

export default function GeneratePage() {
  // Suspense: the screen reads ?model= and ?generation= from the URL (useSearchParams).
  return (
    <Suspense>
      <Generate />
    </Suspense>
  );
}
