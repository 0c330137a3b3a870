import { failureReason, isRunning, planBlock, stallLimitMs, trainingView } from "@/components/training/training-state";
import { nameProblem } from "@/components/training/train-form";
import type { Schemas } from "@/lib/api/client";

type Model = Pick<Schemas["Model"], "status" | "progress" | "failure" | "preset">;

function model(status: Model["status"], progress = 0, failure: Model["failure"] = null): Model {
  return { status, progress, failure, preset: "fast" };
}

const MINUTE = 60_000;

describe("trainingView", () => {
  it("walks the steps preparing → queued → training % → ready", () => {
    expect(trainingView(model("awaiting_credits"))).toMatchObject({ step: 0, running: true, percent: 0, headline: "Reserving credits" });
    expect(trainingView(model("preparing"))).toMatchObject({ step: 0, running: true, headline: "Preparing" });
    expect(trainingView(model("queued"))).toMatchObject({ step: 1, running: true, headline: "Queued" });
    const training = trainingView(model("training", 0.424));
    expect(training).toMatchObject({ step: 2, running: true, percent: 42, headline: "Training — 42%" });
    expect(training.detail).toMatch(/a fast training takes about 10–15 min/);
    expect(trainingView(model("succeeded", 1))).toMatchObject({ step: 3, running: false, percent: 100, headline: "Ready", tone: "success", ending: null });
  });

  it("a failure says why in words and that the credits were released", () => {
    const view = trainingView(model("failed", 0.3, { reason: "provider_failed", message: "CUDA out of memory" }));
    expect(view).toMatchObject({ running: false, headline: "Failed", tone: "destructive", step: 2 });
    expect(view.detail).toBe("The training failed because the training provider reported an error.");
    expect(view.ending).toEqual({
      reason: "the training provider reported an error",
      credits: "Your credits were released: nothing was charged.",
      buyCredits: false,
      retrain: true,
    });
  });

  it("a training refused for lack of credits offers to buy them", () => {
    const view = trainingView(model("failed", 0, { reason: "insufficient_credits", message: "a training costs 150 credits; 0 available" }));
    expect(view.detail).toBe("The training failed because there were not enough credits to pay for it.");
    expect(view.ending).toMatchObject({ buyCredits: true, credits: "Nothing was charged. Buy credits, then start it again." });
  });

  it("a canceled training released its credits", () => {
    const view = trainingView(model("canceled", 0.2, { reason: "canceled_by_user", message: null }));
    expect(view).toMatchObject({ headline: "Canceled", detail: "You canceled this training.", running: false });
    expect(view.ending?.credits).toBe("Your credits were released.");
  });

  it("an unavailable model must be trained again", () => {
    const view = trainingView(model("unavailable", 1, { reason: "provider_version_missing", message: null }));
    expect(view.headline).toBe("Unavailable");
    expect(view.detail).toMatch(/Train it again/);
  });

  it("calls a silent running training stalled, never a finished one", () => {
    expect(trainingView(model("training", 0.5), 9 * MINUTE).stalled).toBe(false);
    const stalled = trainingView(model("training", 0.5), 12 * MINUTE);
    expect(stalled).toMatchObject({ stalled: true, tone: "warning" });
    expect(stalled.detail).toMatch(/^No news for 12 minutes\./);
    expect(stalled.detail).toMatch(/cancel: your credits would be released/);
    expect(trainingView(model("queued"), 16 * MINUTE).stalled).toBe(true);
    expect(trainingView(model("awaiting_credits"), 4 * MINUTE).stalled).toBe(true);
    expect(trainingView(model("succeeded", 1), 600 * MINUTE).stalled).toBe(false);
    expect(trainingView(model("failed", 0, { reason: "x", message: null }), 600 * MINUTE).stalled).toBe(false);
  });

  it("clamps progress into 0-100", () => {
    expect(trainingView(model("training", 1.7)).percent).toBe(100);
    expect(trainingView(model("training", -1)).percent).toBe(0);
  });
});

describe("helpers", () => {
  it("knows which statuses run", () => {
    expect(["awaiting_credits", "preparing", "queued", "training"].every(isRunning)).toBe(true);
    expect(["succeeded", "failed", "canceled", "unavailable"].some(isRunning)).toBe(false);
    expect(stallLimitMs("succeeded")).toBe(Number.POSITIVE_INFINITY);
  });

  it("every failure reason the training service records reads as words", () => {
    for (const code of ["insufficient_credits", "provider_failed", "provider_output_invalid", "hold_expired", "launch_failed", "weights_unavailable", "provider_lost", "dataset_incomplete"]) {
      expect(failureReason(code)).not.toMatch(/_/);
    }
    expect(failureReason("brand_new")).toBe("brand new");
    expect(failureReason(null)).toBe("of an error on our side");
  });

  it("checks a model name in words", () => {
    expect(nameProblem("  ")).toMatch(/^Give your model a name/);
    expect(nameProblem("x".repeat(81))).toBe("Use at most 80 characters (this one has 81).");
    expect(nameProblem(" Alice ")).toBeNull();
  });
});

describe("planBlock", () => {
  const free = { max_concurrent_trainings: 1, max_stored_models: 1 };
  const creator = { max_concurrent_trainings: 1, max_stored_models: 5 };

  it("lets a first training start", () => {
    expect(planBlock([], free)).toBeNull();
    expect(planBlock([{ status: "failed" }, { status: "canceled" }, { status: "unavailable" }], free)).toBeNull();
  });

  it("refuses a second training while one runs", () => {
    expect(planBlock([{ status: "training" }], creator)?.code).toBe("training_limit_reached");
    expect(planBlock([{ status: "awaiting_credits" }], creator)?.message).toMatch(/^Your plan trains 1 model at a time/);
  });

  it("refuses once the plan's models are kept", () => {
    const block = planBlock([{ status: "succeeded" }], free);
    expect(block?.code).toBe("model_limit_reached");
    expect(block?.message).toMatch(/^Your plan keeps 1 model\. Delete one/);
    expect(planBlock([{ status: "succeeded" }, { status: "succeeded" }], creator)).toBeNull();
  });
});
