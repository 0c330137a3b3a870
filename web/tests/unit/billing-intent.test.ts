import { IntentKeys, keepsIntent } from "@/components/billing/intent";
import { planStatusView } from "@/components/billing/plan-status";
import { ApiError } from "@/lib/api/client";

const problem = (status: number, code: string) => new ApiError(status, { status, code }, null);

describe("one Idempotency-Key per intent", () => {
  it("keeps the key while an attempt got no definite answer, and only then", () => {
    expect(keepsIntent(new ApiError(0, null, null))).toBe(true); // the network dropped: it may have happened
    expect(keepsIntent(problem(409, "idempotency_key_in_progress"))).toBe(true);
    expect(keepsIntent(problem(409, "plan_already_active"))).toBe(false); // replayed byte for byte otherwise
    expect(keepsIntent(problem(503, "stripe_unavailable"))).toBe(false); // Stripe may keep a 5xx for its key
  });

  it("reuses the key of a retried intent and mints a new one once it is settled", () => {
    let n = 0;
    const keys = new IntentKeys(() => `k${++n}`);
    expect(keys.keyFor("pack:starter")).toBe("k1");
    expect(keys.keyFor("pack:starter")).toBe("k1"); // a double click
    expect(keys.keyFor("pack:pro")).toBe("k2"); // another intent
    keys.settle("pack:starter", new ApiError(0, null, null));
    expect(keys.keyFor("pack:starter")).toBe("k1"); // the retry after a lost answer
    keys.settle("pack:starter", null);
    expect(keys.keyFor("pack:starter")).toBe("k3");
    keys.clear();
    expect(keys.keyFor("pack:pro")).toBe("k4");
  });
});

describe("the plan in words", () => {
  const plans = [{ id: "creator", name: "Creator" }];
  const current = { plan_id: null as string | null, status: "none", cancel_at_period_end: false, current_period_end: null as string | null };

  it("is the free tier without a subscription", () => {
    expect(planStatusView(current, plans)).toMatchObject({ name: "Free", entitled: false, subscribed: false });
  });

  it("says an active plan renews, or ends when canceled", () => {
    const active = { ...current, plan_id: "creator", status: "active", current_period_end: "2027-01-07T00:00:00Z" };
    expect(planStatusView(active, plans)).toMatchObject({ name: "Creator", label: "Active", tone: "success", entitled: true, subscribed: true });
    expect(planStatusView(active, plans).note).toMatch(/^Renews on /);
    expect(planStatusView({ ...active, cancel_at_period_end: true }, plans).note).toMatch(/^Ends on .*will not renew/);
  });

  it("keeps a past-due plan in force and says what to do", () => {
    const due = planStatusView({ ...current, plan_id: "creator", status: "past_due" }, plans);
    expect(due).toMatchObject({ entitled: true, label: "Payment due", tone: "warning" });
    expect(due.note).toMatch(/billing portal/);
  });

  it("does not count an ended plan", () => {
    expect(planStatusView({ ...current, plan_id: "creator", status: "canceled" }, plans)).toMatchObject({ name: "Creator (not active)", entitled: false, label: "Ended" });
  });
});
