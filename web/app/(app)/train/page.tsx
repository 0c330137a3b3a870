import type { Metadata } from "next";

import { TrainPage } from "@/components/training/train-page";

export const metadata: Metadata = { title: "Train" };

export default async function Page({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const { model } = await searchParams;
  return <TrainPage modelId={typeof model === "string" && model ? model : null} />;
}
