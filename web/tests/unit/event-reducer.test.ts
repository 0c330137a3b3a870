import { effectOf } from "@/lib/events/reducer";

const ev = (type: string, data: Record<string, unknown> = {}) => ({ id: "i-1", type, data });

describe("live event effects", () => {
  it("refreshes models on progress without a toast", () => {
    expect(effectOf(ev("training.model.progressed.v1", { progress: 0.4 }))).toEqual({ invalidate: ["models"], toast: null });
  });

  it("tells that a failed training released its credits", () => {
    const effect = effectOf(ev("training.training.failed.v1", { model_id: "m", reason: "provider_failed" }));
    expect(effect.invalidate).toEqual(expect.arrayContaining(["models", "balance"]));
    expect(effect.toast).toMatchObject({ kind: "error" });
    expect(effect.toast?.text).toMatch(/credits were released/);
  });

  it("says a partial generation charged only what was delivered", () => {
    const effect = effectOf(ev("generation.generation.succeeded.v1", { generation_id: "g", requested: 4, delivered: 3 }));
    expect(effect.toast).toMatchObject({ kind: "warning" });
    expect(effect.toast?.text).toContain("charged for 3 only");
    expect(effect.invalidate).toContain("images");
  });

  it("announces purchased credits but not holds", () => {
    expect(effectOf(ev("billing.credits.changed.v1", { cause: "purchase", available: 100 })).toast?.text).toContain("100 available");
    expect(effectOf(ev("billing.credits.changed.v1", { cause: "hold", available: 90 })).toast).toBeNull();
  });

  it("names the plan in words", () => {
    expect(effectOf(ev("billing.plan.changed.v1", { plan_id: "creator", status: "active" })).toast?.text).toBe("Your Creator plan is active.");
    expect(effectOf(ev("billing.plan.changed.v1", { plan_id: null, status: "canceled" })).toast?.text).toMatch(/free tier/);
  });

  it("re-reads everything after a resync and ignores unknown events", () => {
    expect(effectOf(ev("resync")).invalidate.length).toBeGreaterThan(5);
    expect(effectOf(ev("prompts.enhancement.created.v1"))).toEqual({ invalidate: [], toast: null });
  });
});
