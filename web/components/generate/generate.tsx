"use client";

import { Boxes } from "lucide-react";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useRef, useState } from "react";

import { EmptyState } from "@/components/app/empty-state";
import { PageHeader } from "@/components/app/page-header";
import { QueryView } from "@/components/app/query-view";
import { useModelList } from "@/components/models/use-model-list";
import { ButtonLink } from "@/components/ui/button-link";
import { Skeleton } from "@/components/ui/skeleton";

import { GenerateForm } from "./generate-form";
import { GenerationHistory } from "./generation-history";
import { GenerationResults } from "./generation-results";

const TRAINING = new Set(["awaiting_credits", "preparing", "queued", "training"]);

/** The Generate screen: the form, the live results of the current generation, recent history. */
export function Generate() {
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const models = useModelList();
  // The generation shown lives in the URL (?generation=), so a reload or a shared link keeps it.
  const [generationId, setGenerationId] = useState<string | null>(() => params.get("generation"));
  const [refusal, setRefusal] = useState<{ message: string } | null>(null);
  const [submitting, setSubmitting] = useState<number | null>(null);
  const results = useRef<HTMLDivElement>(null);

  /** On a phone the results are below the form: bring them into view when something starts. */
  const reveal = useCallback(() => {
    const node = results.current;
    if (!node) return;
    const top = node.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.6 || top < 0) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      node.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
    }
  }, []);

  const show = useCallback(
    (id: string) => {
      setRefusal(null);
      setGenerationId(id);
      const next = new URLSearchParams(params.toString());
      next.set("generation", id);
      router.replace(`${pathname}?${next.toString()}`, { scroll: false });
    },
    [params, pathname, router],
  );

  const ready = models.data?.models.filter((m) => m.status === "succeeded") ?? [];
  const training = models.data?.models.some((m) => TRAINING.has(m.status)) ?? false;

  return (
    <>
      <PageHeader title="Generate" description="Describe a scene; your model puts you in it." />
      <QueryView
        query={models}
        loading={
          <div className="grid gap-6 lg:grid-cols-[minmax(0,2fr)_minmax(0,3fr)]">
            <Skeleton className="h-[36rem]" />
            <Skeleton className="h-80" />
          </div>
        }
      >
        {() =>
          ready.length === 0 ? (
            <EmptyState
              icon={Boxes}
              title={training ? "Your model is still training" : "No ready model yet"}
              action={
                <div className="flex flex-wrap justify-center gap-2">
                  {training ? (
                    <ButtonLink href="/models">Watch its progress</ButtonLink>
                  ) : (
                    <>
                      <ButtonLink href="/train">Train a model</ButtonLink>
                      <ButtonLink href="/models" variant="outline">See your models</ButtonLink>
                    </>
                  )}
                </div>
              }
            >
              {training
                ? "You can generate as soon as its training has finished; we will tell you when it is ready."
                : "Generating needs a trained model of you. Upload 10 to 30 photos and train one first."}
            </EmptyState>
          ) : (
            <>
              <div className="grid items-start gap-6 lg:grid-cols-[minmax(0,2fr)_minmax(0,3fr)]">
                <GenerateForm
                  models={ready}
                  initialModelId={params.get("model")}
                  onStarted={(g) => {
                    show(g.id);
                    reveal();
                  }}
                  onRefused={(r) => {
                    setRefusal(r);
                    if (r) reveal();
                  }}
                  onSubmitting={setSubmitting}
                />
                <div ref={results} className="scroll-mt-20 lg:sticky lg:top-20">
                  <GenerationResults generationId={generationId} refusal={refusal} submitting={submitting} />
                </div>
              </div>
              <GenerationHistory currentId={refusal ? null : generationId} onSelect={show} />
            </>
          )
        }
      </QueryView>
    </>
  );
}
