import type { Metadata } from "next";

import { Generate } from "@/components/generate/generate";

export const metadata: Metadata = { title: "Generate" };

export default function GeneratePage() {
  return <Generate />;
}
