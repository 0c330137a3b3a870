"use client";

import { Plus } from "lucide-react";

import { PageHeader } from "@/components/app/page-header";
import { ButtonLink } from "@/components/ui/button-link";
import { Card, CardContent } from "@/components/ui/card";

import { TrainForm } from "./train-form";
import { TrainingProgress } from "./training-progress";

/** Train a model; with `?model=<id>`, follow that model's training live. */
export function TrainPage({ modelId }: { modelId: string | null }) {
  if (modelId) {
    return (
      <>
        <PageHeader
          title="Training"
          description="Live progress of your model. You can leave this page: it keeps training, and we tell you when it is ready."
          actions={
            <>
              <ButtonLink href="/models" variant="outline">All models</ButtonLink>
              <ButtonLink href="/train" variant="outline">
                <Plus aria-hidden /> Train another
              </ButtonLink>
            </>
          }
        />
        <Card>
          <CardContent>
            <TrainingProgress key={modelId} modelId={modelId} />
          </CardContent>
        </Card>
      </>
    );
  }
  return (
    <>
      <PageHeader title="Train a model" description="Your model learns your face from your accepted photos. Pick a name and a preset, then start." />
      <TrainForm />
    </>
  );
}
