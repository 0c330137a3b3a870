"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ChevronRight, Coins, Loader2, Sparkles, Wand2 } from "lucide-react";
import { RadioGroup as RadioGroupPrimitive } from "radix-ui";
import { useId, useRef, useState, type FormEvent } from "react";

import { useBalance } from "@/components/app/balance-chip";
import { usePlans } from "@/components/billing/use-plans";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Skeleton } from "@/components/ui/skeleton";
import { Slider } from "@/components/ui/slider";
import { Switch } from "@/components/ui/switch";
import { Textarea } from "@/components/ui/textarea";
import { ApiError, dataOf, idempotencyKey, useApi, type Schemas } from "@/lib/api/client";
import { cn } from "@/lib/utils";

import { affordability, costLine, MAX_IMAGES } from "./cost";
import { ASPECT_RATIOS, parseSeed, type AspectRatio, type Generation } from "./generation";

type Model = Schemas["Model"];
type Body = Schemas["CreateGenerationRequest"];

const NO_PACK = "none";
const DEFAULT_LORA_SCALE = 1;
const PROMPT_MAX = 2000;

function useStylePacks() {
  const api = useApi();
  return useQuery({ queryKey: ["prompt-packs"], queryFn: async () => dataOf(await api.GET("/v1/prompts/packs")), staleTime: 30 * 60_000 });
}

/** The problem code of a failed request, if the gateway gave one. */
export function codeOf(error: unknown): string | null {
  return error instanceof ApiError ? (error.problem?.code ?? null) : null;
}

/** A labelled choice from a list: the label names the trigger. */
function SelectField({
  id,
  label,
  value,
  onValueChange,
  placeholder,
  options,
}: {
  id: string;
  label: string;
  value: string;
  onValueChange: (value: string) => void;
  placeholder?: string;
  options: readonly { value: string; label: string }[];
}) {
  return (
    <div className="flex flex-col gap-2">
      <Label htmlFor={id}>{label}</Label>
      <Select value={value} onValueChange={onValueChange}>
        <SelectTrigger id={id}>
          <SelectValue placeholder={placeholder} />
        </SelectTrigger>
        <SelectContent>
          {options.map((option) => (
            <SelectItem key={option.value} value={option.value}>
              {option.label}
            </SelectItem>
          ))}
        </SelectContent>
      </Select>
    </div>
  );
}

/**
 * The Generate form. One click is one intent: its Idempotency-Key is made on the first submit of
 * a given request and reused if the same request is sent again before it succeeded (a retry after
 * a dropped connection), so the gateway never starts (or charges) it twice.
 */
export function GenerateForm({
  models,
  initialModelId,
  onStarted,
  onRefused,
  onSubmitting,
}: {
  models: Model[];
  initialModelId: string | null;
  onStarted: (generation: Generation) => void;
  onRefused: (refusal: { message: string } | null) => void;
  /** A request is on its way (with how many images), or no longer (null). */
  onSubmitting?: (count: number | null) => void;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const balance = useBalance();
  const plans = usePlans(5 * 60_000);
  const packs = useStylePacks();
  const ids = useId();

  const [modelId, setModelId] = useState(() => (initialModelId && models.some((m) => m.id === initialModelId) ? initialModelId : (models[0]?.id ?? "")));
  const [prompt, setPrompt] = useState("");
  const [pack, setPack] = useState(NO_PACK);
  const [enhance, setEnhance] = useState(true);
  const [count, setCount] = useState(2);
  const [aspect, setAspect] = useState<AspectRatio>("1:1");
  const [seedText, setSeedText] = useState("");
  const [loraScale, setLoraScale] = useState(DEFAULT_LORA_SCALE);
  const [touched, setTouched] = useState(false);

  const intent = useRef<{ key: string; body: string } | null>(null);
  const sending = useRef(false);

  const model = models.find((m) => m.id === modelId) ?? models[0];
  const seed = parseSeed(seedText);
  const promptError = touched && prompt.trim() === "" ? "Describe the image you want." : null;
  const price = plans.data?.prices.generation_image;
  const afford = affordability(price, count, balance.data?.available);

  const create = useMutation({
    meta: { inPlace: ["prompt_refused", "llm_rejected_prompt"] },
    mutationFn: async ({ body, key }: { body: Body; key: string }) =>
      dataOf(await api.POST("/v1/generations", { body, headers: { "Idempotency-Key": key } })),
    onSuccess: (generation) => {
      intent.current = null;
      queryClient.setQueryData(["generations", "one", generation.id], generation);
      void queryClient.invalidateQueries({ queryKey: ["generations", "list"] });
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
      onStarted(generation);
    },
    onError: (error) => {
      if (codeOf(error) === "prompt_refused" || codeOf(error) === "llm_rejected_prompt") {
        const detail = error instanceof ApiError ? error.problem?.detail : undefined;
        onRefused({ message: detail ?? "" });
      }
    },
    onSettled: () => {
      sending.current = false;
      onSubmitting?.(null);
    },
  });

  const preview = useMutation({
    meta: { inPlace: ["prompt_refused", "llm_rejected_prompt"] },
    mutationFn: async ({ text, key }: { text: string; key: string }) =>
      dataOf(await api.POST("/v1/prompts/enhance", { body: { prompt: text }, headers: { "Idempotency-Key": key } })),
  });
  const previewFor = preview.variables?.text;
  const previewIsCurrent = previewFor !== undefined && previewFor === prompt.trim();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setTouched(true);
    if (sending.current || create.isPending) return;
    if (!model || prompt.trim() === "" || !seed.ok) return;
    const body: Body = {
      model_id: model.id,
      prompt: prompt.trim(),
      enhance,
      pack: pack === NO_PACK ? null : pack,
      num_outputs: count,
      aspect_ratio: aspect,
      output_format: "webp",
      seed: seed.seed,
      lora_scale: loraScale === DEFAULT_LORA_SCALE ? null : loraScale,
    };
    const serialized = JSON.stringify(body);
    if (!intent.current || intent.current.body !== serialized) intent.current = { key: idempotencyKey(), body: serialized };
    sending.current = true;
    onRefused(null);
    onSubmitting?.(count);
    create.mutate({ body, key: intent.current.key });
  }

  function runPreview() {
    const text = prompt.trim();
    if (!text || preview.isPending) return;
    preview.mutate({ text, key: idempotencyKey() });
  }

  const selectedPack = packs.data?.packs.find((p) => p.id === pack);
  const previewRefused = preview.isError && (codeOf(preview.error) === "prompt_refused" || codeOf(preview.error) === "llm_rejected_prompt");

  return (
    <form onSubmit={submit} noValidate aria-label="New generation" className="flex flex-col gap-5 rounded-xl border bg-card p-4 sm:p-5">
      <SelectField
        id={`${ids}-model`}
        label="Model"
        value={model?.id ?? ""}
        onValueChange={setModelId}
        placeholder="Choose a model"
        options={models.map((m) => ({ value: m.id, label: m.name }))}
      />

      <div className="flex flex-col gap-2">
        <Label htmlFor={`${ids}-prompt`}>Prompt</Label>
        <Textarea
          id={`${ids}-prompt`}
          name="prompt"
          value={prompt}
          maxLength={PROMPT_MAX}
          rows={4}
          placeholder="me hiking at golden hour in the Alps, wind in my hair"
          onChange={(event) => setPrompt(event.target.value)}
          onBlur={() => prompt !== "" && setTouched(true)}
          aria-invalid={promptError ? true : undefined}
          aria-describedby={`${ids}-prompt-hint${promptError ? ` ${ids}-prompt-error` : ""}`}
        />
        <p id={`${ids}-prompt-hint`} className="text-xs text-muted-foreground">
          Write <strong className="text-foreground">“me”</strong> for yourself
          {model?.trigger_word ? (
            <>
              : it becomes your model’s trigger word, <code className="rounded bg-secondary px-1 py-0.5 font-mono text-foreground">{model.trigger_word}</code>
            </>
          ) : null}
          . {prompt.length > PROMPT_MAX - 200 ? `${PROMPT_MAX - prompt.length} characters left.` : null}
        </p>
        {promptError ? (
          <p id={`${ids}-prompt-error`} className="text-sm text-destructive">
            {promptError}
          </p>
        ) : null}
      </div>

      <div className="flex flex-col gap-2">
        <Label htmlFor={`${ids}-pack`}>Style pack</Label>
        {packs.isError ? (
          <p className="text-sm text-muted-foreground">Styles could not be loaded; you can generate without one.</p>
        ) : (
          <Select value={pack} onValueChange={setPack} disabled={packs.isPending}>
            <SelectTrigger id={`${ids}-pack`} aria-describedby={`${ids}-pack-description`}>
              <SelectValue placeholder="Loading styles…" />
            </SelectTrigger>
            <SelectContent>
              <SelectItem value={NO_PACK}>No style pack</SelectItem>
              {packs.data?.packs.map((p) => (
                <SelectItem key={p.id} value={p.id}>
                  {p.name}
                </SelectItem>
              ))}
            </SelectContent>
          </Select>
        )}
        <p id={`${ids}-pack-description`} className="text-xs text-muted-foreground">
          {selectedPack ? selectedPack.description : "Your prompt as you wrote it, with no added style."}
        </p>
      </div>

      <div className="flex flex-col gap-3 rounded-lg border p-3">
        <div className="flex items-center justify-between gap-3">
          <Label htmlFor={`${ids}-enhance`}>Enhance my prompt</Label>
          <Switch id={`${ids}-enhance`} checked={enhance} onCheckedChange={setEnhance} aria-describedby={`${ids}-enhance-hint`} />
        </div>
        <p id={`${ids}-enhance-hint`} className="text-xs text-muted-foreground">
          {enhance
            ? "An AI adds lighting, lens and composition details. You will see the exact prompt it used."
            : "Your prompt is used as you wrote it (with your trigger word and style)."}
        </p>
        {enhance ? (
          <div className="flex flex-col gap-2">
            <Button type="button" variant="outline" size="sm" className="self-start" onClick={runPreview} disabled={!prompt.trim() || preview.isPending}>
              {preview.isPending ? <Loader2 aria-hidden className="animate-spin" /> : <Wand2 aria-hidden />}
              Preview enhancement
            </Button>
            <div aria-live="polite">
              {preview.isSuccess && previewIsCurrent ? (
                <div className="rounded-md bg-secondary p-3 text-sm">
                  <p className="mb-1 text-xs font-medium text-secondary-foreground">Enhanced prompt (preview; your style pack is added when generating)</p>
                  <p className="text-secondary-foreground">{preview.data.enhanced_prompt}</p>
                </div>
              ) : null}
              {previewRefused && previewIsCurrent ? (
                <p className="text-sm text-destructive">
                  That prompt asks for something Visiona will not make.{" "}
                  {preview.error instanceof ApiError && preview.error.problem?.detail ? preview.error.problem.detail : null}
                </p>
              ) : null}
            </div>
          </div>
        ) : null}
      </div>

      <div className="flex flex-col gap-2">
        <span id={`${ids}-count`} className="text-sm font-medium">
          Number of images
        </span>
        <RadioGroupPrimitive.Root
          aria-labelledby={`${ids}-count`}
          value={String(count)}
          onValueChange={(value) => setCount(Number(value))}
          orientation="horizontal"
          className="grid grid-cols-4 gap-2"
        >
          {Array.from({ length: MAX_IMAGES }, (_, i) => String(i + 1)).map((value) => (
            <RadioGroupPrimitive.Item
              key={value}
              value={value}
              className="h-10 rounded-md border border-input text-sm font-medium outline-none hover:bg-secondary focus-visible:ring-[3px] focus-visible:ring-ring/60 data-[state=checked]:border-primary data-[state=checked]:bg-primary data-[state=checked]:text-primary-foreground"
            >
              {value}
            </RadioGroupPrimitive.Item>
          ))}
        </RadioGroupPrimitive.Root>
      </div>

      <div className="grid gap-4 sm:grid-cols-2">
        <SelectField id={`${ids}-aspect`} label="Aspect ratio" value={aspect} onValueChange={(value) => setAspect(value as AspectRatio)} options={ASPECT_RATIOS} />
        <div className="flex flex-col gap-2">
          <Label htmlFor={`${ids}-seed`}>Seed (optional)</Label>
          <Input
            id={`${ids}-seed`}
            inputMode="numeric"
            autoComplete="off"
            placeholder="Random"
            value={seedText}
            onChange={(event) => setSeedText(event.target.value)}
            aria-invalid={!seed.ok ? true : undefined}
            aria-describedby={`${ids}-seed-hint`}
          />
          <p id={`${ids}-seed-hint`} className={cn("text-xs", seed.ok ? "text-muted-foreground" : "text-destructive")}>
            {seed.ok ? "The same seed and prompt give the same picture." : seed.message}
          </p>
        </div>
      </div>

      <details className="group rounded-lg border p-3">
        <summary className="flex cursor-pointer list-none items-center gap-2 rounded-sm text-sm font-medium outline-none focus-visible:ring-[3px] focus-visible:ring-ring/60 [&::-webkit-details-marker]:hidden">
          <ChevronRight aria-hidden className="size-4 transition-transform group-open:rotate-90" />
          Advanced
        </summary>
        <div className="mt-4 flex flex-col gap-3">
          <div className="flex items-center justify-between gap-3">
            <span id={`${ids}-lora`} className="text-sm font-medium">
              Likeness strength
            </span>
            <span className="text-sm tabular-nums text-muted-foreground">
              {loraScale.toFixed(2)}
              {loraScale === DEFAULT_LORA_SCALE ? " (default)" : ""}
            </span>
          </div>
          <Slider
            aria-label="Likeness strength"
            min={0}
            max={2}
            step={0.05}
            value={[loraScale]}
            onValueChange={(values) => setLoraScale(Math.round((values[0] ?? DEFAULT_LORA_SCALE) * 100) / 100)}
          />
          <p className="text-xs text-muted-foreground">
            How strongly your model shapes the face: lower leaves the style more room, higher looks more like you (too high can look stiff).
          </p>
          {loraScale !== DEFAULT_LORA_SCALE ? (
            <Button type="button" variant="link" size="sm" className="self-start px-0" onClick={() => setLoraScale(DEFAULT_LORA_SCALE)}>
              Reset to default
            </Button>
          ) : null}
        </div>
      </details>

      <div className="flex flex-col gap-3 border-t pt-4">
        <div className="flex flex-wrap items-baseline justify-between gap-2 text-sm" aria-live="polite">
          <span className="flex items-center gap-2">
            <Coins aria-hidden className="size-4 text-warning" />
            {price !== undefined ? (
              <span>
                <span className="text-muted-foreground">Cost: </span>
                <strong className="tabular-nums" data-testid="generation-cost">
                  {costLine(price, count)}
                </strong>
              </span>
            ) : plans.isError ? (
              <span className="text-muted-foreground">Price unavailable right now</span>
            ) : (
              <Skeleton className="h-4 w-40" />
            )}
          </span>
          {balance.data ? (
            <span className="text-muted-foreground">
              You have <span className="tabular-nums text-foreground">{balance.data.available}</span> available
            </span>
          ) : null}
        </div>
        <p className="text-xs text-muted-foreground">Credits are held while it runs; you pay only for images delivered.</p>
        {afford.kind === "short" ? (
          <div className="flex flex-col gap-2 rounded-lg border border-warning/50 bg-warning/10 p-3 text-sm">
            <p>
              Not enough credits: this needs {afford.cost}, you have {balance.data?.available ?? 0}.
              {afford.affordableImages > 0 ? ` You can afford ${afford.affordableImages} image${afford.affordableImages === 1 ? "" : "s"}.` : ""}
            </p>
            <ButtonLink href="/billing" size="lg">
              <Coins aria-hidden /> Not enough credits — buy more
            </ButtonLink>
          </div>
        ) : (
          <Button type="submit" size="lg" className="select-none" disabled={create.isPending || !model} aria-describedby={!seed.ok ? `${ids}-seed-hint` : undefined}>
            {create.isPending ? <Loader2 aria-hidden className="animate-spin" /> : <Sparkles aria-hidden />}
            Generate
          </Button>
        )}
      </div>
    </form>
  );
}
