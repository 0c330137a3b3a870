"use client";

import { useQuery } from "@tanstack/react-query";
import { ArrowRight, Boxes, Camera, Coins, ImageIcon, Sparkles, Wand2 } from "lucide-react";
import Link from "next/link";
import type { ReactNode } from "react";

import { useBalance } from "@/components/app/balance-chip";
import { EmptyState } from "@/components/app/empty-state";
import { PageHeader } from "@/components/app/page-header";
import { ProblemNotice } from "@/components/app/problem-notice";
import { QueryView } from "@/components/app/query-view";
import { StatusBadge } from "@/components/app/status-badge";
import { useModelList } from "@/components/models/use-model-list";
import { ButtonLink } from "@/components/ui/button-link";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";

type Next = { title: string; text: string; href: string; cta: string; icon: typeof Camera };

/** The one thing to do next, from what the user has so far. */
export function nextStep(photos: Schemas["Photo"][], models: Schemas["Model"][], available: number | null): Next {
  const accepted = photos.filter((p) => p.status === "accepted" || p.status === "accepted_with_warnings").length;
  if (models.some((m) => m.status === "succeeded")) {
    return { title: "Create new images", text: "Your model is ready. Describe a scene and see yourself in it.", href: "/generate", cta: "Generate", icon: Sparkles };
  }
  if (models.some((m) => ["awaiting_credits", "preparing", "queued", "training"].includes(m.status))) {
    return { title: "Your model is training", text: "Follow it live; we will tell you when it is ready.", href: "/models", cta: "Watch progress", icon: Wand2 };
  }
  if (accepted < 10) {
    return {
      title: accepted === 0 ? "Upload your photos" : `Add ${10 - accepted} more photo${10 - accepted === 1 ? "" : "s"}`,
      text: "A model needs 10 to 30 good photos of you: different angles, good light, only your face.",
      href: "/photos",
      cta: "Upload photos",
      icon: Camera,
    };
  }
  if (available !== null && available <= 0) {
    return { title: "Buy credits to train", text: `You have ${accepted} accepted photos. A credit pack pays for your first model.`, href: "/billing", cta: "Buy credits", icon: Coins };
  }
  return { title: "Train your model", text: `You have ${accepted} accepted photos: enough to train.`, href: "/train", cta: "Start training", icon: Wand2 };
}

/** A row of the dashboard: its heading with a link to the whole list, then what it shows. */
function Section({ id, title, href, linkLabel, children }: { id: string; title: string; href: string; linkLabel: string; children: ReactNode }) {
  return (
    <section aria-labelledby={id} className="mt-8">
      <div className="mb-3 flex items-center justify-between">
        <h2 id={id} className="text-lg font-semibold">{title}</h2>
        <ButtonLink href={href} variant="link">{linkLabel}</ButtonLink>
      </div>
      {children}
    </section>
  );
}

export function Dashboard() {
  const api = useApi();
  const balance = useBalance();
  const photos = useQuery({ queryKey: ["photos", "all"], queryFn: async () => dataOf(await api.GET("/v1/photos", { params: { query: { limit: 100 } } })) });
  const models = useModelList();
  const images = useQuery({ queryKey: ["images", "recent"], queryFn: async () => dataOf(await api.GET("/v1/images", { params: { query: { limit: 8 } } })) });

  // The balance only changes the advice when it is known: an unreadable balance does not hold it up.
  const ready = photos.data && models.data && (balance.data || balance.isError);
  const next = ready ? nextStep(photos.data.photos, models.data.models, balance.data?.available ?? null) : null;

  return (
    <>
      <PageHeader title="Dashboard" description="Your studio at a glance." />
      <div className="grid gap-4 lg:grid-cols-3">
        <Card className="lg:col-span-2">
          <CardHeader>
            <CardDescription>What to do next</CardDescription>
            {next ? (
              <CardTitle className="text-xl">{next.title}</CardTitle>
            ) : photos.isError || models.isError ? null : (
              <Skeleton className="h-6 w-48" />
            )}
          </CardHeader>
          <CardContent className="flex flex-wrap items-center justify-between gap-4">
            {next ? (
              <p className="max-w-md text-muted-foreground">{next.text}</p>
            ) : photos.isError || models.isError ? (
              <ProblemNotice
                error={photos.error ?? models.error}
                onRetry={() => void Promise.all([photos.refetch(), models.refetch()])}
              />
            ) : (
              <Skeleton className="h-4 w-72" />
            )}
            {next ? (
              <ButtonLink href={next.href}>
                <next.icon aria-hidden /> {next.cta} <ArrowRight aria-hidden />
              </ButtonLink>
            ) : null}
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardDescription>Credits</CardDescription>
            {balance.data ? (
              <CardTitle className="text-3xl tabular-nums">{balance.data.available}</CardTitle>
            ) : balance.isError ? null : (
              <Skeleton className="h-8 w-20" />
            )}
          </CardHeader>
          <CardContent className="text-sm text-muted-foreground">
            {balance.isError ? (
              <ProblemNotice error={balance.error} onRetry={() => void balance.refetch()} />
            ) : balance.data ? (
              <p>
                available · {balance.data.held} held for running work · {balance.data.balance} in total
              </p>
            ) : (
              <Skeleton className="h-4 w-40" />
            )}
            <ButtonLink href="/billing" variant="link" className="mt-2 px-0">Buy credits</ButtonLink>
          </CardContent>
        </Card>
      </div>

      <Section id="models-title" title="Your models" href="/models" linkLabel="All models">
        <QueryView query={models} loading={<div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3">{[0, 1, 2].map((i) => <Skeleton key={i} className="h-20" />)}</div>}>
          {(data) =>
            data.models.length === 0 ? (
              <EmptyState icon={Boxes} title="No models yet" action={<ButtonLink href="/train" variant="outline">Train your first model</ButtonLink>}>
                A model learns your face from your photos. It takes about half an hour.
              </EmptyState>
            ) : (
              <ul className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3">
                {data.models.slice(0, 6).map((model) => (
                  <li key={model.id}>
                    <Link href={`/models#${model.id}`} className="flex items-center justify-between gap-3 rounded-xl border bg-card p-4 hover:bg-secondary">
                      <span className="min-w-0">
                        <span className="block truncate font-medium">{model.name}</span>
                        <span className="text-sm text-muted-foreground">{model.preset} preset</span>
                      </span>
                      <StatusBadge kind="model" status={model.status} />
                    </Link>
                  </li>
                ))}
              </ul>
            )
          }
        </QueryView>
      </Section>

      <Section id="images-title" title="Recent images" href="/gallery" linkLabel="Open gallery">
        <QueryView query={images} loading={<div className="grid grid-cols-2 gap-3 sm:grid-cols-4">{[0, 1, 2, 3].map((i) => <Skeleton key={i} className="aspect-square" />)}</div>}>
          {(data) =>
            data.images.length === 0 ? (
              <EmptyState icon={ImageIcon} title="No images yet">Images you create appear here.</EmptyState>
            ) : (
              <ul className="grid grid-cols-2 gap-3 sm:grid-cols-4">
                {data.images.map((image) => (
                  <li key={image.id}>
                    <Link href={`/gallery?image=${image.id}`} className="block overflow-hidden rounded-xl border">
                      {/* eslint-disable-next-line @next/next/no-img-element -- presigned S3 URLs, shown as they are */}
                      <img src={image.thumbnail_url ?? image.url} alt={image.prompt ?? "Generated image"} className="aspect-square w-full object-cover" loading="lazy" />
                    </Link>
                  </li>
                ))}
              </ul>
            )
          }
        </QueryView>
      </Section>
    </>
  );
}
