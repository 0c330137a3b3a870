import {
  bannerOf,
  CALM_POLL_MS,
  FAST_POLL_MS,
  initialReturnState,
  parseCheckoutReturn,
  PENDING_KEY,
  pollInterval,
  reduceReturn,
  savePending,
  SLOW_AFTER_MS,
  takePending,
  type PendingCheckout,
  type ReturnEvent,
  type ReturnState,
} from "@/components/billing/checkout-return";

const SESSION = "cs_test_abc123";
const params = (query: string) => new URLSearchParams(query);
const pending = (over: Partial<PendingCheckout> = {}): PendingCheckout => ({
  sessionId: SESSION,
  kind: "pack",
  itemId: "starter",
  name: "Starter pack",
  credits: 200,
  balanceBefore: 50,
  startedAt: 1_000,
  ...over,
});
const run = (state: ReturnState | null, ...events: ReturnEvent[]) => events.reduce(reduceReturn, state);
const waiting = (now = 10_000) => initialReturnState({ kind: "success", sessionId: SESSION }, now);

describe("the return from Checkout: reading the address", () => {
  it("reads success with its session, and canceled", () => {
    expect(parseCheckoutReturn(params(`checkout=success&session_id=${SESSION}`))).toEqual({ kind: "success", sessionId: SESSION });
    expect(parseCheckoutReturn(params("checkout=canceled"))).toEqual({ kind: "canceled" });
    expect(parseCheckoutReturn(params(""))).toBeNull();
    expect(parseCheckoutReturn(params("checkout=maybe"))).toBeNull();
  });

  it("drops a session id that is not Stripe's (it is only ever compared, never shown)", () => {
    expect(parseCheckoutReturn(params("checkout=success&session_id=<script>"))).toEqual({ kind: "success", sessionId: null });
    expect(parseCheckoutReturn(params("checkout=success&session_id={CHECKOUT_SESSION_ID}"))).toEqual({ kind: "success", sessionId: null });
  });

  it("starts waiting on success, and says nothing was charged on cancel", () => {
    expect(waiting()).toMatchObject({ phase: "waiting", since: 10_000, baseline: null });
    expect(bannerOf(waiting())?.title).toBe("Payment received — your credits are on their way");
    const canceled = initialReturnState({ kind: "canceled" }, 0);
    expect(bannerOf(canceled)?.title).toMatch(/nothing was charged/);
    expect(initialReturnState(null, 0)).toBeNull();
  });
});

describe("the return from Checkout: credits arrive only on evidence", () => {
  it("does not count the redirect itself: the first balance seen is only the baseline", () => {
    const state = run(waiting(), { type: "balance", balance: 120 });
    expect(state).toMatchObject({ phase: "waiting", baseline: 120 });
    expect(run(state, { type: "balance", balance: 120 })?.phase).toBe("waiting");
  });

  it("turns arrived when the balance rises above the baseline", () => {
    const state = run(waiting(), { type: "balance", balance: 120 }, { type: "balance", balance: 320 });
    expect(state).toEqual({ phase: "arrived", credits: 200 });
    expect(bannerOf(state)?.title).toBe("200 credits added");
    expect(bannerOf(state, 320)?.body).toMatch(/320 credits available/);
  });

  it("measures from the balance before leaving for Checkout, so a webhook faster than the redirect still counts", () => {
    // Kept in sessionStorage: 50 before; the grant landed before this page first read the balance.
    const state = run(waiting(), { type: "restore", pending: pending() }, { type: "balance", balance: 250 });
    expect(state).toEqual({ phase: "arrived", credits: 200 });
  });

  it("also when the pending checkout is restored after a balance was seen", () => {
    const state = run(waiting(), { type: "balance", balance: 250 }, { type: "restore", pending: pending() });
    expect(state).toEqual({ phase: "arrived", credits: 200 });
  });

  it("ignores a pending checkout of another session", () => {
    const state = run(waiting(), { type: "restore", pending: pending({ sessionId: "cs_test_other" }) });
    expect(state).toMatchObject({ phase: "waiting", pending: null, baseline: null });
  });

  it("finds the grant of this session in the ledger (a pack's purchase names the session)", () => {
    const entries = [
      { kind: "capture", reference: "generation:g1", delta_balance: -4, created_at: "2026-12-07T04:00:00Z" },
      { kind: "purchase", reference: SESSION, delta_balance: 1000, created_at: "2026-12-07T04:00:01Z" },
    ];
    expect(run(waiting(), { type: "ledger", entries })).toEqual({ phase: "arrived", credits: 1000 });
    expect(run(waiting(), { type: "ledger", entries: entries.slice(0, 1) })?.phase).toBe("waiting");
  });

  it("finds a plan's first monthly credits by date (their reference is the invoice)", () => {
    const startedAt = Date.parse("2026-12-07T04:00:00Z");
    const state = run(waiting(), { type: "restore", pending: pending({ kind: "plan", itemId: "creator", credits: 600, balanceBefore: null, startedAt }) });
    const old = { kind: "plan_grant", reference: "in_old", delta_balance: 600, created_at: "2026-11-07T04:00:00Z" };
    expect(run(state, { type: "ledger", entries: [old] })?.phase).toBe("waiting");
    const fresh = { kind: "plan_grant", reference: "in_new", delta_balance: 600, created_at: "2026-12-07T04:00:02Z" };
    expect(run(state, { type: "ledger", entries: [fresh, old] })).toEqual({ phase: "arrived", credits: 600 });
  });

  it("says the pack's size when known, even if a job's capture overlapped the grant", () => {
    const state = run(waiting(), { type: "restore", pending: pending({ balanceBefore: 50 }) }, { type: "balance", balance: 246 });
    expect(state).toEqual({ phase: "arrived", credits: 200 });
  });
});

describe("the return from Checkout: time", () => {
  it("polls fast for two minutes, then calmly, then not at all once arrived", () => {
    const start = waiting(0);
    expect(pollInterval(start)).toBe(FAST_POLL_MS);
    expect(run(start, { type: "tick", now: SLOW_AFTER_MS - 1 })?.phase).toBe("waiting");
    const slow = run(start, { type: "tick", now: SLOW_AFTER_MS });
    expect(slow?.phase).toBe("slow");
    expect(pollInterval(slow)).toBe(CALM_POLL_MS);
    expect(bannerOf(slow)?.title).toBe("Still processing — it can take a minute; this page will update");
    expect(bannerOf(slow)?.busy).toBe(false);
    expect(pollInterval(run(start, { type: "balance", balance: 0 }, { type: "balance", balance: 200 }))).toBe(false);
    expect(pollInterval(null)).toBe(false);
  });

  it("still turns arrived after being slow", () => {
    const slow = run(waiting(0), { type: "balance", balance: 0 }, { type: "tick", now: SLOW_AFTER_MS + 5 });
    expect(run(slow, { type: "balance", balance: 1000 })).toEqual({ phase: "arrived", credits: 1000 });
  });

  it("stays arrived, and goes away when dismissed", () => {
    const arrived = run(waiting(0), { type: "balance", balance: 0 }, { type: "balance", balance: 200 });
    expect(run(arrived, { type: "balance", balance: 900 }, { type: "tick", now: 10 * SLOW_AFTER_MS })).toEqual(arrived);
    const gone = run(arrived, { type: "dismiss" });
    expect(bannerOf(gone)).toBeNull();
    expect(pollInterval(gone)).toBe(false);
  });
});

describe("the pending checkout in sessionStorage", () => {
  beforeEach(() => window.sessionStorage.clear());

  it("is read back once for its session", () => {
    savePending(window.sessionStorage, pending({ startedAt: 5_000 }));
    expect(takePending(window.sessionStorage, SESSION, 6_000)).toEqual(pending({ startedAt: 5_000 }));
    expect(takePending(window.sessionStorage, SESSION, 6_000)).toBeNull();
  });

  it("is not taken for another session, when stale, or when it is not ours", () => {
    savePending(window.sessionStorage, pending());
    expect(takePending(window.sessionStorage, "cs_test_other", 2_000)).toBeNull();
    savePending(window.sessionStorage, pending({ startedAt: 0 }));
    expect(takePending(window.sessionStorage, SESSION, 25 * 3600_000)).toBeNull();
    window.sessionStorage.setItem(PENDING_KEY, "{not json");
    expect(takePending(window.sessionStorage, SESSION, 0)).toBeNull();
    window.sessionStorage.setItem(PENDING_KEY, JSON.stringify({ sessionId: SESSION, credits: "lots" }));
    expect(takePending(window.sessionStorage, SESSION, 0)).toBeNull();
  });

  it("survives a storage that refuses", () => {
    const broken = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("full");
      },
      removeItem: () => undefined,
    };
    expect(() => savePending(broken, pending())).not.toThrow();
    expect(takePending(broken, SESSION, 0)).toBeNull();
  });
});
