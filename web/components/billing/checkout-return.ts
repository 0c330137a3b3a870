/**
 * The return from Stripe Checkout, as a small state machine (pure: no React, no timers, no I/O).
 *
 * Coming back to `/billing?checkout=success&session_id=cs_…` proves nothing: the credits are
 * granted by billing when Stripe's webhook arrives, which may be before, or a while after, the
 * browser is back. So the banner starts `waiting` and turns `arrived` on evidence only:
 *   - the ledger holds the grant of this very session (a pack's `purchase` entry has the
 *     Checkout Session id as its reference; a plan's first `plan_grant` is dated after the
 *     checkout started), which also covers a webhook that beat the redirect; or
 *   - the balance (credits owned) rose above the baseline: the balance just before leaving for
 *     Checkout (kept in sessionStorage), or else the first balance seen on return.
 * After two minutes without evidence it turns `slow` (a calm message), and still listens.
 */

export type CheckoutOutcome = { kind: "success"; sessionId: string | null } | { kind: "canceled" };

/** What the checkout that was opened from this browser tab expected (kept across the redirect). */
export type PendingCheckout = {
  sessionId: string;
  kind: "pack" | "plan";
  itemId: string;
  name: string;
  /** The credits the pack or the plan's first month grants. */
  credits: number;
  /** The balance (credits owned) just before leaving for Checkout, if it was known. */
  balanceBefore: number | null;
  /** Date.now() when the checkout was opened. */
  startedAt: number;
};

export type Waiting = {
  phase: "waiting" | "slow";
  sessionId: string | null;
  since: number;
  /** The balance the grant is measured against; null until one is known. */
  baseline: number | null;
  /** The last balance seen. */
  seen: number | null;
  /** What the checkout bought, if this tab opened it. */
  pending: PendingCheckout | null;
};

export type ReturnState =
  | Waiting
  | { phase: "arrived"; credits: number }
  | { phase: "canceled" }
  | { phase: "dismissed" };

export type LedgerLike = { kind: string; reference: string | null; delta_balance: number; created_at: string };

export type ReturnEvent =
  /** The pending checkout read back from sessionStorage (after the first render). */
  | { type: "restore"; pending: PendingCheckout | null }
  /** A balance seen: the balance query answered, or a `billing.credits.changed.v1` event. */
  | { type: "balance"; balance: number }
  /** The newest ledger entries. */
  | { type: "ledger"; entries: readonly LedgerLike[] }
  /** Time passes. */
  | { type: "tick"; now: number }
  | { type: "dismiss" };

/** Poll the balance this often while waiting, for this long, then this often (the live stream is the main path). */
export const FAST_POLL_MS = 3_000;
export const SLOW_AFTER_MS = 120_000;
export const CALM_POLL_MS = 30_000;
/** A plan's grant may be dated a little before the browser's clock said the checkout started. */
const CLOCK_SLACK_MS = 60_000;
/** A pending checkout older than this is stale (the tab went elsewhere meanwhile). */
const PENDING_MAX_AGE_MS = 24 * 3600_000;

export const PENDING_KEY = "visiona.checkout.pending";

export function parseCheckoutReturn(params: { get(name: string): string | null }): CheckoutOutcome | null {
  const checkout = params.get("checkout");
  if (checkout === "success") {
    const sessionId = params.get("session_id");
    return { kind: "success", sessionId: sessionId && /^cs_[A-Za-z0-9_]+$/.test(sessionId) ? sessionId : null };
  }
  if (checkout === "canceled" || checkout === "cancelled") return { kind: "canceled" };
  return null;
}

export function initialReturnState(outcome: CheckoutOutcome | null, now: number): ReturnState | null {
  if (!outcome) return null;
  if (outcome.kind === "canceled") return { phase: "canceled" };
  return { phase: "waiting", sessionId: outcome.sessionId, since: now, baseline: null, seen: null, pending: null };
}

function grantOf(state: Waiting, entries: readonly LedgerLike[]): LedgerLike | undefined {
  return entries.find((entry) => {
    if (entry.delta_balance <= 0) return false;
    if (state.sessionId && entry.reference === state.sessionId) return true;
    const pending = state.pending;
    return (
      pending?.kind === "plan" &&
      entry.kind === "plan_grant" &&
      Date.parse(entry.created_at) >= pending.startedAt - CLOCK_SLACK_MS
    );
  });
}

function compare(state: Waiting, balance: number): ReturnState {
  if (state.baseline === null) return { ...state, baseline: balance };
  if (balance > state.baseline) {
    // The pack's size when it is known: another movement (a job's capture) may overlap.
    return { phase: "arrived", credits: state.pending?.credits ?? balance - state.baseline };
  }
  return state;
}

export function reduceReturn(state: ReturnState | null, event: ReturnEvent): ReturnState | null {
  if (!state) return state;
  if (event.type === "dismiss") return { phase: "dismissed" };
  if (state.phase !== "waiting" && state.phase !== "slow") return state;

  switch (event.type) {
    case "restore": {
      const pending = event.pending && (!state.sessionId || event.pending.sessionId === state.sessionId) ? event.pending : null;
      if (!pending) return state;
      // The balance before leaving is the truest baseline: a grant that came before this
      // page loaded still shows as a rise.
      const next: Waiting = { ...state, sessionId: state.sessionId ?? pending.sessionId, pending, baseline: pending.balanceBefore ?? state.baseline };
      return next.seen !== null ? compare(next, next.seen) : next;
    }
    case "balance":
      return compare({ ...state, seen: event.balance }, event.balance);
    case "ledger": {
      const grant = grantOf(state, event.entries);
      return grant ? { phase: "arrived", credits: grant.delta_balance } : state;
    }
    case "tick":
      return state.phase === "waiting" && event.now - state.since >= SLOW_AFTER_MS ? { ...state, phase: "slow" } : state;
  }
}

/** How often to re-read the balance in this state (false: not at all). */
export function pollInterval(state: ReturnState | null): number | false {
  if (state?.phase === "waiting") return FAST_POLL_MS;
  if (state?.phase === "slow") return CALM_POLL_MS;
  return false;
}

export type Banner = { tone: "info" | "success" | "warning" | "neutral"; title: string; body: string; busy: boolean };

function creditsWords(n: number): string {
  return `${new Intl.NumberFormat("en").format(n)} credit${n === 1 ? "" : "s"}`;
}

/** The words of the banner (null: no banner); `available`: the credits available now, if known. */
export function bannerOf(state: ReturnState | null, available?: number): Banner | null {
  if (!state) return null;
  switch (state.phase) {
    case "waiting":
      return {
        tone: "info",
        title: "Payment received — your credits are on their way",
        body: "Stripe confirms the payment to us directly; your credits appear here the moment it does.",
        busy: true,
      };
    case "slow":
      return {
        tone: "warning",
        title: "Still processing — it can take a minute; this page will update",
        body: "Stripe has not confirmed the payment to us yet. Some payment methods take longer. You can leave this page: the credits are added to your account either way.",
        busy: false,
      };
    case "arrived":
      return {
        tone: "success",
        title: `${creditsWords(state.credits)} added`,
        body: available !== undefined ? `They are ready to use: you have ${creditsWords(available)} available.` : "They are ready to use.",
        busy: false,
      };
    case "canceled":
      return {
        tone: "neutral",
        title: "Checkout canceled — nothing was charged",
        body: "You left Stripe's payment page before paying. Buy credits whenever you like.",
        busy: false,
      };
    case "dismissed":
      return null;
  }
}

// --- the pending checkout, kept in sessionStorage across the redirect ----------------------

type StorageLike = Pick<Storage, "getItem" | "setItem" | "removeItem">;

export function savePending(storage: StorageLike, pending: PendingCheckout): void {
  try {
    storage.setItem(PENDING_KEY, JSON.stringify(pending));
  } catch {
    // Private mode or full storage: the return then measures from the balance seen on arrival.
  }
}

function isPending(value: unknown): value is PendingCheckout {
  if (!value || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.sessionId === "string" &&
    (v.kind === "pack" || v.kind === "plan") &&
    typeof v.itemId === "string" &&
    typeof v.name === "string" &&
    typeof v.credits === "number" &&
    (v.balanceBefore === null || typeof v.balanceBefore === "number") &&
    typeof v.startedAt === "number"
  );
}

/** The pending checkout of this session id (or of any, when the id is unknown), removed once read. */
export function takePending(storage: StorageLike, sessionId: string | null, now: number): PendingCheckout | null {
  let raw: string | null = null;
  try {
    raw = storage.getItem(PENDING_KEY);
    storage.removeItem(PENDING_KEY);
  } catch {
    return null;
  }
  if (!raw) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isPending(value)) return null;
  if (sessionId && value.sessionId !== sessionId) return null;
  if (now - value.startedAt > PENDING_MAX_AGE_MS) return null;
  return value;
}
