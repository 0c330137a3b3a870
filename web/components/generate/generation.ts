/**
 * What the Generate page shows of a generation: its slots (one per requested image), whether it
 * is still moving, and what its failure means in words. Pure and unit-tested.
 */
import type { Schemas } from "@/lib/api/client";

export type Generation = Schemas["Generation"];
export type Image = Schemas["Image"];
export type AspectRatio = Schemas["CreateGenerationRequest"]["aspect_ratio"];

/** The aspect ratios the API accepts (openapi.json, CreateGenerationRequest), in display order. */
export const ASPECT_RATIOS: readonly { value: AspectRatio; label: string }[] = [
  { value: "1:1", label: "1:1 · square" },
  { value: "4:5", label: "4:5 · portrait" },
  { value: "3:4", label: "3:4 · portrait" },
  { value: "2:3", label: "2:3 · portrait" },
  { value: "9:16", label: "9:16 · tall (stories)" },
  { value: "9:21", label: "9:21 · very tall" },
  { value: "5:4", label: "5:4 · landscape" },
  { value: "4:3", label: "4:3 · landscape" },
  { value: "3:2", label: "3:2 · landscape" },
  { value: "16:9", label: "16:9 · wide" },
  { value: "21:9", label: "21:9 · cinema wide" },
];

/** `"16:9"` → 16/9 (width over height), for sizing a slot before its image exists. */
export function ratioOf(aspect: string): number {
  const [w, h] = aspect.split(":").map(Number);
  return w && h ? w / h : 1;
}

const FINAL = new Set(["succeeded", "failed", "canceled"]);

export function isFinal(status: string): boolean {
  return FINAL.has(status);
}

export type Slot =
  | { index: number; state: "delivered"; image: Image }
  | { index: number; state: "waiting" }
  /** The generation ended without this image (it was not charged). */
  | { index: number; state: "missing" };

/** One slot per requested image, in order; delivered images by their `index`. */
export function slotsOf(generation: Pick<Generation, "num_outputs" | "images" | "status">): Slot[] {
  const byIndex = new Map(generation.images.map((image) => [image.index, image]));
  const extra = generation.images.filter((image) => image.index < 0 || image.index >= generation.num_outputs);
  const slots: Slot[] = [];
  for (let index = 0; index < generation.num_outputs; index++) {
    const image = byIndex.get(index);
    if (image) slots.push({ index, state: "delivered", image });
    else slots.push({ index, state: isFinal(generation.status) ? "missing" : "waiting" });
  }
  // An image with an index outside the request still belongs on screen.
  for (const image of extra) slots.push({ index: image.index, state: "delivered", image });
  return slots;
}

const REFUSED = new Set(["prompt_refused", "llm_rejected_prompt", "blocked"]);

export function isRefusal(reason: string | null | undefined): boolean {
  return !!reason && REFUSED.has(reason);
}

const FAILURES: Record<string, string> = {
  insufficient_credits: "there were not enough credits when it started",
  provider_failed: "the image service failed",
  launch_failed: "the image service could not start it",
  hold_expired: "it ran past its time limit",
  model_unavailable: "the model is no longer available",
  canceled: "it was canceled",
};

/** Why a generation failed, as a sentence ending with what happened to the credits. */
export function failureText(failure: Generation["failure"]): string {
  const reason = failure?.reason ?? "";
  const why = FAILURES[reason] ?? (reason ? reason.replace(/_/g, " ") : "of an error");
  return `This generation failed because ${why}. Its credits were released: you were not charged.`;
}

/** The seed field: empty means random (null); otherwise a whole number 0 … 2³¹−1. */
export function parseSeed(text: string): { ok: true; seed: number | null } | { ok: false; message: string } {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, seed: null };
  if (!/^\d+$/.test(trimmed)) return { ok: false, message: "Use a whole number (0 or more), or leave it empty for a random seed." };
  const seed = Number(trimmed);
  if (seed > 2147483647) return { ok: false, message: "Use a number up to 2,147,483,647." };
  return { ok: true, seed };
}

/**
 * How often to re-read a generation that is still moving. Live events (generation.generation.*)
 * refresh it at once; this light poll only covers a stream that dropped or an event missed.
 */
export function pollInterval(status: string | undefined): number | false {
  if (!status || isFinal(status)) return false;
  return 2_500;
}
