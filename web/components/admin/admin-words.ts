/**
 * The operator console's data in words an operator (support staff, not a developer) reads:
 * ages, a job's next step and why it failed, why an event died, how an outbox is doing; and
 * the checks of what they type before it is sent. Pure, tested.
 */

export const REASON_MAX = 500;
export const AMOUNT_MAX = 1_000_000;
const USER_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** A duration as read at a glance: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/** Seconds since `iso` (0 for a time in the future or one that cannot be read). */
export function secondsSince(iso: string, now: number = Date.now()): number {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? 0 : Math.max(0, (now - at) / 1000);
}

function words(code: string): string {
  const spaced = code.replace(/[._-]+/g, " ").trim();
  return spaced ? spaced.charAt(0).toUpperCase() + spaced.slice(1) : "Unknown";
}

const STEPS: Record<string, string> = {
  ask_credits: "Asking billing for credits",
  launch: "Starting at the provider",
  poll: "Asking the provider",
  ingest: "Copying outputs into storage",
  verify: "Checking the model at the provider",
  finalize: "Copying the model into storage",
  cancel: "Canceling at the provider",
  purge: "Deleting its files",
};

/** What a job does next, in words; null when it has no next step (it waits on a webhook). */
export function stepWords(work: string | null): string | null {
  return work ? (STEPS[work] ?? words(work)) : null;
}

const FAILURES: Record<string, string> = {
  operator_failed: "Stopped by support",
  launch_failed: "Could not start at the provider",
  provider_lost: "The provider lost the job",
  provider_failed: "The provider failed",
  weights_unavailable: "The model's weights could not be copied",
  insufficient_credits: "Not enough credits",
  hold_expired: "Ran past its time limit",
  model_unavailable: "The model is no longer available",
  prompt_refused: "The prompt was refused",
  canceled: "Canceled",
};

export function failureWords(reason: string | null): string | null {
  return reason ? (FAILURES[reason] ?? words(reason)) : null;
}

const DEATHS: Record<string, string> = {
  delivery_limit: "Failed too many times",
  rejected: "Rejected: its consumer could not handle it",
  expired: "Expired before it was handled",
  maxlen: "Dropped: the queue was full",
};

/** Why a message was dead-lettered (RabbitMQ's x-death reason), in words. */
export function deathWords(reason: string | null): string {
  return reason ? (DEATHS[reason] ?? words(reason)) : "Unknown";
}

export type Health = { label: string; tone: "success" | "info" | "warning" };

/** An outbox is behind when its oldest unpublished event waited longer than this. */
export const OUTBOX_BEHIND_S = 60;

/** How an outbox is doing: nothing waiting, publishing, or behind (its oldest event waits too long). */
export function outboxHealth(unpublished: number, oldestAgeS: number): Health {
  if (unpublished === 0) return { label: "Up to date", tone: "success" };
  if (oldestAgeS > OUTBOX_BEHIND_S) return { label: "Behind", tone: "warning" };
  return { label: "Publishing", tone: "info" };
}

/** Why the reason cannot be sent, or null: required, and at most REASON_MAX characters. */
export function reasonProblem(reason: string): string | null {
  const trimmed = reason.trim();
  if (!trimmed) return "Say why: the reason goes into the audit log.";
  if (trimmed.length > REASON_MAX) return `Keep it to ${REASON_MAX} characters (now ${trimmed.length}).`;
  return null;
}

/** Why the user id cannot be looked up, or null (Clerk ids: letters, digits, "_" and "-"). */
export function userIdProblem(userId: string): string | null {
  const trimmed = userId.trim();
  if (!trimmed) return "Enter the user's id.";
  if (!USER_ID.test(trimmed)) return "A user id has only letters, digits, “_” and “-”, like user_2abc…";
  return null;
}

/** The whole number of credits typed, or why it is not one (1 to AMOUNT_MAX). */
export function parseAmount(typed: string): { amount: number } | { problem: string } {
  const trimmed = typed.trim();
  if (!/^\d+$/.test(trimmed)) return { problem: "Enter a whole number of credits." };
  const amount = Number(trimmed);
  if (amount < 1 || amount > AMOUNT_MAX) return { problem: `Enter 1 to ${new Intl.NumberFormat("en").format(AMOUNT_MAX)} credits.` };
  return { amount };
}

const SERVICES: Record<string, string> = {
  gateway: "Gateway",
  training: "Training",
  generation: "Generation",
  billing: "Billing",
  prompts: "Prompts",
};

export function serviceName(service: string): string {
  return SERVICES[service] ?? words(service);
}

export const SECTIONS = ["jobs", "users", "dead-letters", "outbox"] as const;
export type Section = (typeof SECTIONS)[number];

/** The console's section named in the URL (`?section=`), else the first. */
export function sectionOf(value: string | null): Section {
  return SECTIONS.find((section) => section === value) ?? "jobs";
}
