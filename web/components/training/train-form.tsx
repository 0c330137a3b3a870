"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Boxes, Camera, Coins, Loader2, Wand2 } from "lucide-react";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useRef, useState, type FormEvent } from "react";

import { useBalance } from "@/components/app/balance-chip";
import { usePlans } from "@/components/billing/use-plans";
import { useModelList } from "@/components/models/use-model-list";
import { EmptyState } from "@/components/app/empty-state";
import { ProblemNotice } from "@/components/app/problem-notice";
import { useEveryPhoto } from "@/components/photos/photo-queries";
import { isUsable, MAX_PHOTOS, MIN_PHOTOS } from "@/components/photos/photo-reasons";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { RadioGroup, RadioGroupItem } from "@/components/ui/radio-group";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, idempotencyKey, useApi, type Schemas } from "@/lib/api/client";
import { formatCredits } from "@/lib/format";
import { cn } from "@/lib/utils";

import { DEFAULT_PRESET, PRESETS, type PresetId } from "./presets";
import { modelQueryKey } from "./training-progress";
import { planBlock } from "./training-state";

export const NAME_MAX = 80;

/** The name field's problem in words, or null. */
export function nameProblem(name: string): string | null {
  const trimmed = name.trim();
  if (!trimmed) return "Give your model a name, for example “Me, summer portraits”.";
  if (trimmed.length > NAME_MAX) return `Use at most ${NAME_MAX} characters (this one has ${trimmed.length}).`;
  return null;
}

function PhotoPicker({ photos, selected, onToggle }: { photos: Schemas["Photo"][]; selected: ReadonlySet<string>; onToggle: (id: string) => void }) {
  return (
    <ul className="grid grid-cols-4 gap-2 sm:grid-cols-6 lg:grid-cols-10">
      {photos.map((photo, index) => {
        const checked = selected.has(photo.id);
        const id = `use-photo-${photo.id}`;
        return (
          <li key={photo.id} className="relative">
            <input id={id} type="checkbox" checked={checked} onChange={() => onToggle(photo.id)} className="peer absolute top-1.5 left-1.5 z-10 size-4 accent-primary" />
            <label
              htmlFor={id}
              className={cn(
                "block cursor-pointer overflow-hidden rounded-md border-2 transition peer-focus-visible:ring-[3px] peer-focus-visible:ring-ring/60",
                checked ? "border-primary" : "border-transparent opacity-50",
              )}
            >
              {photo.preview_url ? (
                // eslint-disable-next-line @next/next/no-img-element -- short-lived presigned URL, shown as it is
                <img src={photo.preview_url} alt={`Use photo ${index + 1}`} className="aspect-square w-full object-cover" loading="lazy" />
              ) : (
                <span className="flex aspect-square w-full items-center justify-center bg-muted text-xs">Photo {index + 1}</span>
              )}
            </label>
          </li>
        );
      })}
    </ul>
  );
}

/**
 * Start a training: a name, a preset (each with its cost and rough time), the accepted photos
 * it will use (10 to 30), and the credits it needs. One Idempotency-Key per request: a double
 * click or a retry of the same form never starts (nor charges) twice.
 */
export function TrainForm() {
  const api = useApi();
  const router = useRouter();
  const queryClient = useQueryClient();
  const every = useEveryPhoto();
  const plans = usePlans();
  const balance = useBalance();
  const models = useModelList();

  const [name, setName] = useState("");
  const [preset, setPreset] = useState<PresetId>(DEFAULT_PRESET);
  const [picked, setPicked] = useState<Set<string> | null>(null);
  const [touched, setTouched] = useState(false);
  const intent = useRef<{ fingerprint: string; key: string } | null>(null);

  const accepted = (every.data ?? []).filter(isUsable);
  const selected = picked ?? new Set(accepted.slice(0, MAX_PHOTOS).map((photo) => photo.id));
  const selectedIds = accepted.filter((photo) => selected.has(photo.id)).map((photo) => photo.id);

  const start = useMutation({
    mutationFn: async (body: Schemas["CreateModelRequest"]) => {
      // The same request keeps its key (a retry is the same intent); a changed form gets a new one.
      const fingerprint = JSON.stringify(body);
      if (intent.current?.fingerprint !== fingerprint) intent.current = { fingerprint, key: idempotencyKey() };
      return dataOf(await api.POST("/v1/models", { body, headers: { "Idempotency-Key": intent.current.key } }));
    },
    onSuccess: (model) => {
      queryClient.setQueryData(modelQueryKey(model.id), model);
      void queryClient.invalidateQueries({ queryKey: ["models"] });
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
      router.push(`/train?model=${model.id}`);
    },
  });

  if (every.isPending || plans.isPending || balance.isPending) {
    return (
      <div className="flex flex-col gap-4" role="status" aria-label="Loading">
        <Skeleton className="h-10 w-full max-w-md" />
        <Skeleton className="h-40 w-full" />
        <Skeleton className="h-24 w-full" />
      </div>
    );
  }
  if (every.isError) return <ProblemNotice error={every.error} onRetry={() => void every.refetch()} />;

  if (accepted.length < MIN_PHOTOS) {
    const missing = MIN_PHOTOS - accepted.length;
    return (
      <EmptyState
        icon={Camera}
        title={`Add ${missing} more photo${missing === 1 ? "" : "s"} first`}
        action={
          <ButtonLink href="/photos">Upload photos</ButtonLink>
        }
      >
        A model trains on {MIN_PHOTOS} to {MAX_PHOTOS} accepted photos of you. You have {accepted.length} accepted.
      </EmptyState>
    );
  }

  const price = plans.data?.prices.training ?? null;
  const available = balance.data?.available ?? null;
  const short = price !== null && available !== null && available < price;
  const block = plans.data && models.data ? planBlock(models.data.models, plans.data.current.limits) : null;
  const problem = nameProblem(name);
  const countOk = selectedIds.length >= MIN_PHOTOS && selectedIds.length <= MAX_PHOTOS;

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setTouched(true);
    if (problem || !countOk || short || block || start.isPending) return;
    start.mutate({ name: name.trim(), preset, photo_ids: selectedIds });
  };

  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setPicked(next);
  };

  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-6">
      <Card>
        <CardHeader>
          <CardTitle>Name</CardTitle>
          <CardDescription>How you will find this model when you generate.</CardDescription>
        </CardHeader>
        <CardContent className="flex max-w-md flex-col gap-2">
          <Label htmlFor="model-name">Model name</Label>
          <Input
            id="model-name"
            value={name}
            maxLength={NAME_MAX + 20}
            onChange={(event) => setName(event.target.value)}
            onBlur={() => setTouched(true)}
            placeholder="e.g. Me, summer portraits"
            aria-invalid={touched && problem ? true : undefined}
            aria-describedby={touched && problem ? "model-name-problem" : undefined}
          />
          {touched && problem ? (
            <p id="model-name-problem" className="text-sm text-destructive">
              {problem}
            </p>
          ) : null}
        </CardContent>
      </Card>

      <Card>
        <CardHeader>
          <CardTitle id="preset-title">Preset</CardTitle>
          <CardDescription>
            {price !== null
              ? `Every preset costs the same: ${formatCredits(price)}. They differ in training time and likeness.`
              : "They differ in training time and likeness."}
          </CardDescription>
        </CardHeader>
        <CardContent>
          <RadioGroup aria-labelledby="preset-title" value={preset} onValueChange={(value) => setPreset(value as PresetId)} className="grid gap-3 md:grid-cols-3">
            {PRESETS.map((option) => (
              <div key={option.id} className={cn("flex gap-3 rounded-xl border p-4 has-[:focus-visible]:ring-[3px] has-[:focus-visible]:ring-ring/60", preset === option.id && "border-primary bg-primary/10")}>
                <RadioGroupItem value={option.id} id={`preset-${option.id}`} className="mt-1" aria-describedby={`preset-${option.id}-text`} />
                <div className="flex flex-col gap-1">
                  <Label htmlFor={`preset-${option.id}`} className="cursor-pointer text-base">
                    {option.label}
                  </Label>
                  <p id={`preset-${option.id}-text`} className="text-sm text-muted-foreground">
                    {price !== null ? `${formatCredits(price)} · ` : ""}
                    {option.time}
                    <br />
                    {option.text}
                  </p>
                </div>
              </div>
            ))}
          </RadioGroup>
        </CardContent>
      </Card>

      <Card>
        <CardHeader>
          <CardTitle>Photos</CardTitle>
          <CardDescription aria-live="polite">
            {selectedIds.length} of {accepted.length} accepted photos selected
            {accepted.length > MAX_PHOTOS ? ` (at most ${MAX_PHOTOS})` : ""}.{" "}
            <Link href="/photos" className="text-accent underline underline-offset-4">
              Manage photos
            </Link>
          </CardDescription>
        </CardHeader>
        <CardContent className="flex flex-col gap-3">
          <PhotoPicker photos={accepted} selected={selected} onToggle={toggle} />
          {!countOk ? (
            <p className="text-sm text-destructive" role="alert">
              Select {MIN_PHOTOS} to {MAX_PHOTOS} photos (now {selectedIds.length}).
            </p>
          ) : null}
        </CardContent>
      </Card>

      {plans.isError || balance.isError ? <ProblemNotice error={plans.error ?? balance.error} onRetry={() => void (plans.refetch(), balance.refetch())} /> : null}

      {block ? (
        <Alert variant="warning">
          <Boxes aria-hidden />
          <AlertTitle>{block.title}</AlertTitle>
          <AlertDescription>
            <p>{block.message}</p>
            <div className="mt-1 flex flex-wrap gap-2">
              <ButtonLink href="/models" size="sm" variant="outline">See your models</ButtonLink>
              <ButtonLink href="/billing" size="sm" variant="outline">See plans</ButtonLink>
            </div>
          </AlertDescription>
        </Alert>
      ) : null}

      {short ? (
        <Alert variant="warning">
          <Coins aria-hidden />
          <AlertTitle>Not enough credits</AlertTitle>
          <AlertDescription>
            <p>
              A training costs {formatCredits(price)}; you have {formatCredits(available)} available.
            </p>
            <ButtonLink href="/billing" size="sm" className="mt-1">Buy credits</ButtonLink>
          </AlertDescription>
        </Alert>
      ) : null}

      {start.isError ? <ProblemNotice error={start.error} onRetry={() => start.mutate({ name: name.trim(), preset, photo_ids: selectedIds })} /> : null}

      <div className="flex flex-wrap items-center gap-4">
        <Button type="submit" size="lg" disabled={start.isPending || short || Boolean(block)}>
          {start.isPending ? <Loader2 aria-hidden className="animate-spin" /> : <Wand2 aria-hidden />}
          Start training
        </Button>
        <p className="text-sm text-muted-foreground">
          {price !== null ? `${formatCredits(price)} are held when it starts and charged only if it succeeds. ` : ""}
          {available !== null ? `You have ${formatCredits(available)} available.` : ""}
        </p>
      </div>
    </form>
  );
}
