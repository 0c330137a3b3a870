/**
 * What a credit ledger entry means to a person: the kind in words, what it was for, and its
 * amount signed (colour is only a second cue, for people who can tell colours apart).
 * Pure, so every kind of `LedgerEntry` in the OpenAPI is unit-tested.
 *
 * The ledger has two columns of its own: `delta_balance` (credits owned) and `delta_held`
 * (credits reserved by running jobs). A hold or a release moves only the reserved ones, so
 * its balance change is zero: it is shown as "N on hold" / "N released", not as a sign.
 */

export type LedgerEntryLike = {
  kind: string;
  delta_balance: number;
  delta_held: number;
  balance_after: number;
  available_after: number;
  reference: string | null;
  reason: string | null;
};

export type Tone = "credit" | "debit" | "held" | "neutral";

export type EntryView = {
  /** The kind in words: "Credit pack bought". */
  label: string;
  /** What it was for or why, when the entry says: "for a training · the job failed". */
  detail: string | null;
  /** The amount as shown: "+200", "−150", "150 on hold". Always readable without colour. */
  amount: string;
  /** The same for a screen reader: "200 credits added". */
  amountSpoken: string;
  tone: Tone;
  /** The balance after the entry, and the available part when some is held. */
  after: string;
};

export const KIND_LABELS: Record<string, string> = {
  purchase: "Credit pack bought",
  plan_grant: "Monthly plan credits",
  hold: "Reserved for a job",
  capture: "Spent",
  release: "Released, not used",
  refund_clawback: "Refund: credits taken back",
  adjustment: "Correction by support",
};

/** An unknown kind still reads as words ("some_new_kind" → "Some new kind"). */
export function kindLabel(kind: string): string {
  const known = KIND_LABELS[kind];
  if (known) return known;
  const words = kind.replace(/[_.-]+/g, " ").trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : "Other";
}

const JOBS: Record<string, string> = {
  training: "for a training",
  generation: "for images",
};

const OUTCOMES: Record<string, string> = {
  succeeded: "the job finished",
  failed: "the job failed",
  canceled: "the job was canceled",
  expired: "the job ran out of time",
};

/** `training:<id>` → "for a training"; a Stripe object id → what it is. */
export function referenceWords(reference: string | null): string | null {
  if (!reference) return null;
  const [prefix] = reference.split(":", 1);
  if (prefix && reference.includes(":") && JOBS[prefix]) return JOBS[prefix];
  if (reference.startsWith("cs_")) return "through Stripe Checkout";
  if (reference.startsWith("in_")) return "on a Stripe invoice";
  if (reference.startsWith("ch_") || reference.startsWith("py_") || reference.startsWith("pi_")) return "on a Stripe payment";
  return null;
}

function reasonWords(kind: string, reason: string | null): string | null {
  if (!reason) return null;
  if (kind === "adjustment") return reason;
  if (kind === "release" && reason === "succeeded") return "the job used less than reserved";
  if (kind === "capture" && reason === "succeeded") return null;
  return OUTCOMES[reason] ?? reason.replace(/_/g, " ");
}

const MINUS = "\u2212";

/** "+200", "−150", "0": a real minus sign, and a plus for gains. */
export function signed(value: number): string {
  const digits = new Intl.NumberFormat("en").format(Math.abs(value));
  if (value > 0) return `+${digits}`;
  if (value < 0) return `${MINUS}${digits}`;
  return "0";
}

function count(value: number): string {
  return new Intl.NumberFormat("en").format(value);
}

function credits(value: number): string {
  return `${count(value)} credit${Math.abs(value) === 1 ? "" : "s"}`;
}

export function describeEntry(entry: LedgerEntryLike): EntryView {
  const label = kindLabel(entry.kind);
  const detail = [referenceWords(entry.reference), reasonWords(entry.kind, entry.reason)].filter(Boolean).join(" · ") || null;

  let amount: string;
  let amountSpoken: string;
  let tone: Tone;
  if (entry.delta_balance > 0) {
    amount = signed(entry.delta_balance);
    amountSpoken = `${credits(entry.delta_balance)} added`;
    tone = "credit";
  } else if (entry.delta_balance < 0) {
    amount = signed(entry.delta_balance);
    amountSpoken = `${credits(-entry.delta_balance)} taken`;
    tone = "debit";
  } else if (entry.delta_held > 0) {
    amount = `${count(entry.delta_held)} on hold`;
    amountSpoken = `${credits(entry.delta_held)} put on hold`;
    tone = "held";
  } else if (entry.delta_held < 0) {
    amount = `${count(-entry.delta_held)} released`;
    amountSpoken = `${credits(-entry.delta_held)} released from hold`;
    tone = "neutral";
  } else {
    amount = "0";
    amountSpoken = "no change";
    tone = "neutral";
  }

  const after =
    entry.available_after === entry.balance_after
      ? count(entry.balance_after)
      : `${count(entry.balance_after)} (${count(entry.available_after)} available)`;

  return { label, detail, amount, amountSpoken, tone, after };
}
