/** The caller's plan (`GET /v1/billing/plans` → `current`) in words. Pure, tested. */

import { formatDate } from "@/lib/format";

export type EntitlementsLike = {
  plan_id: string | null;
  status: string;
  cancel_at_period_end: boolean;
  current_period_end: string | null;
};

/** Billing's ENTITLED_STATUSES: the plan's limits apply and another plan cannot be bought. */
export const ENTITLED = ["active", "trialing", "past_due"] as const;

const STATUS: Record<string, { label: string; tone: "success" | "warning" | "destructive" | "secondary" | "info" }> = {
  active: { label: "Active", tone: "success" },
  trialing: { label: "Trial", tone: "info" },
  past_due: { label: "Payment due", tone: "warning" },
  unpaid: { label: "Unpaid", tone: "destructive" },
  incomplete: { label: "Waiting for the first payment", tone: "warning" },
  incomplete_expired: { label: "First payment failed", tone: "destructive" },
  canceled: { label: "Ended", tone: "secondary" },
  paused: { label: "Paused", tone: "secondary" },
  none: { label: "Free", tone: "secondary" },
};

export type PlanStatusView = {
  name: string;
  label: string;
  tone: "success" | "warning" | "destructive" | "secondary" | "info";
  /** "Renews on …", "Ends on …", or a next step. */
  note: string | null;
  /** The plan is in force (its limits apply, another cannot be bought). */
  entitled: boolean;
  /** There is a subscription at all (else the free tier: no status badge to show). */
  subscribed: boolean;
};

export function planStatusView(current: EntitlementsLike, plans: readonly { id: string; name: string }[]): PlanStatusView {
  const entitled = current.plan_id !== null && (ENTITLED as readonly string[]).includes(current.status);
  const plan = current.plan_id ? plans.find((p) => p.id === current.plan_id) : undefined;
  const name = current.plan_id ? (plan?.name ?? current.plan_id) : "Free";
  const status = STATUS[current.status] ?? { label: current.status.replace(/_/g, " "), tone: "secondary" as const };
  let note: string | null = null;
  if (!current.plan_id || current.status === "none") {
    note = "Pay as you go with credit packs, or subscribe for monthly credits and higher limits.";
  } else if (current.status === "past_due") {
    note = "Stripe could not take the last payment. Update your card in the billing portal to keep the plan.";
  } else if (entitled && current.current_period_end) {
    note = current.cancel_at_period_end
      ? `Ends on ${formatDate(current.current_period_end)}; it will not renew.`
      : `Renews on ${formatDate(current.current_period_end)}.`;
  }
  return { name: entitled || !current.plan_id ? name : `${name} (not active)`, label: status.label, tone: status.tone, note, entitled, subscribed: current.plan_id !== null && current.status !== "none" };
}
