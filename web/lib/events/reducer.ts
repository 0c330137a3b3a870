/**
 * What one live event means for the page: which cached queries to re-read, and which toast,
 * if any, to show. Pure (no React, no I/O), so every event kind is unit-tested.
 */

export type LiveEvent = { id: string | null; type: string; data: Record<string, unknown> };

export type Toast = { kind: "info" | "success" | "warning" | "error"; text: string; id?: string };

export type EventEffect = {
  /** Query keys (their first element) whose cached data is now stale. */
  invalidate: string[];
  toast: Toast | null;
};

const REASONS: Record<string, string> = {
  insufficient_credits: "there were not enough credits",
  canceled: "it was canceled",
  provider_failed: "the image service failed",
  hold_expired: "it ran past its time limit",
  model_unavailable: "the model is no longer available",
  prompt_refused: "the prompt was refused",
};

function reason(data: Record<string, unknown>): string {
  const code = typeof data.reason === "string" ? data.reason : "";
  return REASONS[code] ?? (code ? code.replace(/_/g, " ") : "of an error");
}

function count(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

const PLAN_STATUS: Record<string, string> = {
  active: "is active",
  trialing: "is in its trial",
  past_due: "has a payment due",
  canceled: "was canceled",
  unpaid: "is unpaid",
};

function planText(planId: unknown, status: unknown): string {
  if (typeof planId !== "string" || !planId) return "Your plan ended; you are on the free tier.";
  const name = planId.charAt(0).toUpperCase() + planId.slice(1).replace(/[_-]/g, " ");
  const state = typeof status === "string" ? (PLAN_STATUS[status] ?? status.replace(/_/g, " ")) : "changed";
  return `Your ${name} plan ${state}.`;
}

export function effectOf(event: LiveEvent): EventEffect {
  const d = event.data;
  switch (event.type) {
    case "training.training.requested.v1":
      return { invalidate: ["models", "balance"], toast: null };
    case "training.model.progressed.v1":
      return { invalidate: ["models"], toast: null };
    case "training.model.ready.v1":
      return {
        invalidate: ["models"],
        toast: { kind: "success", text: "Your model is ready. Time to create!", id: `model-${String(d.model_id)}` },
      };
    case "training.training.failed.v1":
      return {
        invalidate: ["models", "balance", "ledger"],
        toast: { kind: "error", text: `Training failed because ${reason(d)}. Your credits were released.`, id: `model-${String(d.model_id)}` },
      };
    case "training.training.canceled.v1":
      return {
        invalidate: ["models", "balance", "ledger"],
        toast: { kind: "info", text: "Training canceled. Your credits were released.", id: `model-${String(d.model_id)}` },
      };
    case "training.model.unavailable.v1":
      return {
        invalidate: ["models"],
        toast: { kind: "warning", text: "One of your models is no longer available at the provider. Train it again to keep using it." },
      };
    case "generation.generation.requested.v1":
      return { invalidate: ["generations", "balance"], toast: null };
    case "generation.generation.succeeded.v1": {
      const delivered = count(d.delivered);
      const requested = count(d.requested);
      const partial = delivered < requested;
      return {
        invalidate: ["generations", "images", "balance", "ledger"],
        toast: {
          kind: partial ? "warning" : "success",
          text: partial
            ? `${delivered} of ${requested} images are ready; you were charged for ${delivered} only.`
            : `${delivered === 1 ? "Your image is" : `${delivered} images are`} ready.`,
          id: `generation-${String(d.generation_id)}`,
        },
      };
    }
    case "generation.generation.failed.v1":
      return {
        invalidate: ["generations", "images", "balance", "ledger"],
        toast: { kind: "error", text: `Generation failed because ${reason(d)}. Your credits were released.`, id: `generation-${String(d.generation_id)}` },
      };
    case "generation.generation.canceled.v1":
      return {
        invalidate: ["generations", "images", "balance", "ledger"],
        toast: { kind: "info", text: "Generation canceled. Unused credits were released.", id: `generation-${String(d.generation_id)}` },
      };
    case "billing.credits.changed.v1": {
      const cause = typeof d.cause === "string" ? d.cause : "";
      const grant = cause === "purchase" || cause === "plan_grant" || cause === "adjustment";
      return {
        invalidate: ["balance", "ledger"],
        toast: grant ? { kind: "success", text: `Credits arrived: ${count(d.available)} available.`, id: `credits-${event.id ?? ""}` } : null,
      };
    }
    case "billing.plan.changed.v1":
      return {
        invalidate: ["plans", "balance"],
        toast: { kind: "info", text: planText(d.plan_id, d.status) },
      };
    case "billing.credits.rejected.v1":
      return {
        invalidate: ["models", "generations", "balance"],
        toast: {
          kind: "error",
          text: `Not enough credits: this needs ${count(d.required)}, you have ${count(d.available)}. Buy credits to continue.`,
        },
      };
    case "gateway.export.ready.v1":
      return { invalidate: ["exports"], toast: { kind: "success", text: "Your data export is ready to download.", id: `export-${String(d.export_id)}` } };
    case "gateway.account.deletion_progressed.v1":
      return { invalidate: ["deletion"], toast: null };
    case "resync":
      // The stream could not resume where it left off: re-read everything shown.
      return { invalidate: ["models", "photos", "generations", "images", "balance", "ledger", "exports", "deletion"], toast: null };
    default:
      return { invalidate: [], toast: null };
  }
}

/** The event names the stream listens for (EventSource dispatches by name). */
export const EVENT_TYPES = [
  "training.training.requested.v1",
  "training.model.progressed.v1",
  "training.model.ready.v1",
  "training.training.failed.v1",
  "training.training.canceled.v1",
  "training.model.unavailable.v1",
  "generation.generation.requested.v1",
  "generation.generation.succeeded.v1",
  "generation.generation.failed.v1",
  "generation.generation.canceled.v1",
  "billing.credits.changed.v1",
  "billing.plan.changed.v1",
  "billing.credits.rejected.v1",
  "gateway.export.ready.v1",
  "gateway.account.deletion_progressed.v1",
  "resync",
] as const;
