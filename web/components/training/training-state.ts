/**
 * What a model's training looks like to a person: its stage, a headline, a sentence, the
 * progress bar's value, and whether it seems stuck. Pure (the time since the last change is
 * passed in), so every status and failure reason is unit-tested.
 */

import type { Schemas } from "@/lib/api/client";

import { presetInfo } from "./presets";

type Model = Pick<Schemas["Model"], "status" | "progress" | "failure" | "preset">;

export const STEPS = ["Preparing", "Queued", "Training", "Ready"] as const;

export type Tone = "info" | "success" | "warning" | "destructive" | "muted";

export type TrainingView = {
  /** Index in STEPS of the step reached (failed and canceled keep the one they stopped at). */
  step: number;
  running: boolean;
  /** 0-100 for the progress bar. */
  percent: number;
  headline: string;
  detail: string;
  tone: Tone;
  stalled: boolean;
  /** Why it ended without a model, in words; null unless failed or canceled. */
  ending: { reason: string; credits: string; buyCredits: boolean; retrain: boolean } | null;
};

const RUNNING = new Set(["awaiting_credits", "preparing", "queued", "training"]);

export function isRunning(status: string): boolean {
  return RUNNING.has(status);
}

const MINUTE = 60_000;

/** How long a running model may go without any change before we call it stalled. The emulator
 *  reports every few seconds and the real trainer at least every half minute (the reconciler). */
export function stallLimitMs(status: string): number {
  switch (status) {
    case "awaiting_credits":
      return 3 * MINUTE; // billing is asked again after a minute
    case "preparing":
      return 5 * MINUTE;
    case "queued":
      return 15 * MINUTE; // a cold provider can take a while to start
    case "training":
      return 10 * MINUTE;
    default:
      return Number.POSITIVE_INFINITY;
  }
}

const FAILURES: Record<string, string> = {
  insufficient_credits: "there were not enough credits to pay for it",
  insufficient_quota: "there were not enough credits to pay for it",
  provider_failed: "the training provider reported an error",
  provider_output_invalid: "the trainer finished without producing a model",
  hold_expired: "it ran past the time it was paid for",
  launch_failed: "it could not be started at the training provider",
  weights_unavailable: "the trained model could not be copied from the provider",
  provider_lost: "the training provider lost track of it",
  dataset_incomplete: "some of its photos could not be read",
  canceled_by_user: "you canceled it",
  canceled: "it was canceled",
  deleted: "the model was deleted",
  provider_version_missing: "the provider no longer has the trained model",
};

export function failureReason(reason: string | null | undefined): string {
  if (!reason) return "of an error on our side";
  return FAILURES[reason] ?? reason.replace(/_/g, " ");
}

function stepOf(status: string, progress: number): number {
  switch (status) {
    case "awaiting_credits":
    case "preparing":
      return 0;
    case "queued":
      return 1;
    case "training":
      return 2;
    case "succeeded":
    case "unavailable":
      return 3;
    default:
      // Failed or canceled: where it stopped, as far as we can tell.
      return progress > 0 ? 2 : 0;
  }
}

function minutes(ms: number): string {
  const m = Math.max(1, Math.round(ms / MINUTE));
  return `${m} minute${m === 1 ? "" : "s"}`;
}

export function trainingView(model: Model, sinceChangeMs: number = 0): TrainingView {
  const percent = model.status === "succeeded" ? 100 : Math.round(Math.min(1, Math.max(0, model.progress)) * 100);
  const running = isRunning(model.status);
  const stalled = running && sinceChangeMs >= stallLimitMs(model.status);
  const step = stepOf(model.status, model.progress);
  const base = { step, running, percent, stalled, ending: null };
  let view: TrainingView;
  switch (model.status) {
    case "awaiting_credits":
      view = { ...base, headline: "Reserving credits", detail: "Setting aside the credits this training costs.", tone: "info" };
      break;
    case "preparing":
      view = { ...base, headline: "Preparing", detail: "Packing your photos for the trainer.", tone: "info" };
      break;
    case "queued":
      view = { ...base, headline: "Queued", detail: "Waiting for a machine at the training provider.", tone: "info" };
      break;
    case "training": {
      const time = presetInfo(model.preset)?.time;
      view = {
        ...base,
        headline: `Training — ${percent}%`,
        detail: `Your model is learning your face${time ? `; a ${model.preset} training takes ${time}` : ""}. You can leave this page: we will tell you when it is ready.`,
        tone: "info",
      };
      break;
    }
    case "succeeded":
      view = { ...base, headline: "Ready", detail: "Your model is ready. Describe a scene and see yourself in it.", tone: "success" };
      break;
    case "unavailable":
      view = {
        ...base,
        headline: "Unavailable",
        detail: "The training provider no longer has this model, so it cannot make images. Train it again from your photos.",
        tone: "warning",
      };
      break;
    case "canceled": {
      const code = model.failure?.reason ?? "canceled";
      view = {
        ...base,
        headline: "Canceled",
        detail: code === "canceled_by_user" ? "You canceled this training." : `The training stopped because ${failureReason(code)}.`,
        tone: "muted",
        ending: { reason: failureReason(code), credits: "Your credits were released.", buyCredits: false, retrain: true },
      };
      break;
    }
    case "failed": {
      const code = model.failure?.reason ?? null;
      const broke = code === "insufficient_credits" || code === "insufficient_quota";
      view = {
        ...base,
        headline: "Failed",
        detail: `The training failed because ${failureReason(code)}.`,
        tone: "destructive",
        ending: {
          reason: failureReason(code),
          credits: broke ? "Nothing was charged. Buy credits, then start it again." : "Your credits were released: nothing was charged.",
          buyCredits: broke,
          retrain: true,
        },
      };
      break;
    }
    default:
      view = { ...base, headline: model.status, detail: "", tone: "muted" };
  }
  if (stalled) {
    view = {
      ...view,
      tone: "warning",
      detail: `No news for ${minutes(sinceChangeMs)}. The provider may be busy; Visiona keeps checking and this page updates by itself. You can keep waiting, or cancel: your credits would be released.`,
    };
  }
  return view;
}

const NOT_KEPT = new Set(["failed", "canceled", "unavailable"]);

export type PlanBlock = { code: "training_limit_reached" | "model_limit_reached"; title: string; message: string };

/** Whether the plan's limits refuse a new training now (the gateway checks the same rule:
 *  running = not finished; kept = neither failed, canceled nor unavailable). */
export function planBlock(
  models: readonly Pick<Schemas["Model"], "status">[],
  limits: Pick<Schemas["Limits"], "max_concurrent_trainings" | "max_stored_models">,
): PlanBlock | null {
  const running = models.filter((model) => isRunning(model.status)).length;
  const kept = models.filter((model) => !NOT_KEPT.has(model.status)).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (running >= limits.max_concurrent_trainings) {
    return {
      code: "training_limit_reached",
      title: "A training is already running",
      message: `Your plan trains ${plural(limits.max_concurrent_trainings, "model")} at a time. Wait for it to finish, or upgrade your plan.`,
    };
  }
  if (kept >= limits.max_stored_models) {
    return {
      code: "model_limit_reached",
      title: "Your plan's models are all in use",
      message: `Your plan keeps ${plural(limits.max_stored_models, "model")}. Delete one on the Models page, or upgrade your plan to keep more.`,
    };
  }
  return null;
}
