import { describe, expect, it } from "vitest";

import { affordability, clampImages, costLine, generationCost } from "@/components/generate/cost";
import { failureText, isFinal, isRefusal, parseSeed, pollInterval, ratioOf, slotsOf, type Image } from "@/components/generate/generation";

describe("cost", () => {
  it("is the price per image times the number of images (1–4)", () => {
    expect(generationCost(4, 2)).toBe(8);
    expect(generationCost(4, 9)).toBe(16);
    expect(generationCost(4, 0)).toBe(4);
    expect(generationCost(undefined, 2)).toBeNull();
    expect(generationCost(-1, 2)).toBeNull();
    expect(clampImages(Number.NaN)).toBe(1);
  });

  it("reads as a sum", () => {
    expect(costLine(4, 2)).toBe("2 images × 4 credits = 8 credits");
    expect(costLine(1, 1)).toBe("1 image × 1 credit = 1 credit");
  });
});

describe("affordability", () => {
  it("is unknown until both price and balance are known", () => {
    expect(affordability(undefined, 2, 50)).toEqual({ kind: "unknown", cost: null });
    expect(affordability(4, 2, undefined)).toEqual({ kind: "unknown", cost: 8 });
  });

  it("is affordable with enough available credits, exactly enough included", () => {
    expect(affordability(4, 2, 50)).toEqual({ kind: "affordable", cost: 8, remaining: 42 });
    expect(affordability(4, 2, 8)).toEqual({ kind: "affordable", cost: 8, remaining: 0 });
  });

  it("says by how much it is short, and how many images the balance would pay for", () => {
    expect(affordability(4, 4, 9)).toEqual({ kind: "short", cost: 16, shortBy: 7, affordableImages: 2 });
    expect(affordability(4, 1, 0)).toEqual({ kind: "short", cost: 4, shortBy: 4, affordableImages: 0 });
    expect(affordability(4, 1, -3)).toEqual({ kind: "short", cost: 4, shortBy: 4, affordableImages: 0 });
  });

  it("treats a free image as always affordable", () => {
    expect(affordability(0, 4, 0)).toEqual({ kind: "affordable", cost: 0, remaining: 0 });
  });
});

const img = (index: number): Image => ({
  id: `i${index}`,
  generation_id: "g",
  model_id: "m",
  index,
  content_type: "image/webp",
  width: 96,
  height: 96,
  size_bytes: 1,
  blurhash: "LeEd?BogfQjcFlkBazaxs:oefPay",
  favourite: false,
  created_at: "2026-12-07T00:00:00Z",
  url: "u",
  thumbnail_url: "t",
  download_url: "d",
  urls_expire_at: "2026-12-07T00:15:00Z",
  prompt: "p",
});

describe("generation slots", () => {
  it("has one slot per requested image, delivered ones by index, the rest waiting", () => {
    const slots = slotsOf({ num_outputs: 3, status: "running", images: [img(1)] });
    expect(slots.map((s) => s.state)).toEqual(["waiting", "delivered", "waiting"]);
  });

  it("marks slots that will never come once the generation is final", () => {
    const slots = slotsOf({ num_outputs: 2, status: "succeeded", images: [img(0)] });
    expect(slots.map((s) => s.state)).toEqual(["delivered", "missing"]);
    expect(slotsOf({ num_outputs: 2, status: "canceled", images: [] }).every((s) => s.state === "missing")).toBe(true);
  });

  it("still shows an image whose index is outside the request", () => {
    expect(slotsOf({ num_outputs: 1, status: "succeeded", images: [img(0), img(5)] })).toHaveLength(2);
  });
});

describe("generation status", () => {
  it("knows final states and polls only while moving", () => {
    expect(isFinal("succeeded")).toBe(true);
    expect(isFinal("failed")).toBe(true);
    expect(isFinal("canceled")).toBe(true);
    expect(isFinal("running")).toBe(false);
    expect(pollInterval("queued")).toBeGreaterThan(0);
    expect(pollInterval("succeeded")).toBe(false);
    expect(pollInterval(undefined)).toBe(false);
  });

  it("explains failures with the credits released", () => {
    expect(failureText({ reason: "provider_failed", message: null })).toBe(
      "This generation failed because the image service failed. Its credits were released: you were not charged.",
    );
    expect(failureText({ reason: "some_new_reason", message: null })).toContain("some new reason");
    expect(failureText(null)).toContain("of an error");
    expect(isRefusal("prompt_refused")).toBe(true);
    expect(isRefusal("provider_failed")).toBe(false);
  });

  it("reads aspect ratios", () => {
    expect(ratioOf("16:9")).toBeCloseTo(16 / 9);
    expect(ratioOf("bad")).toBe(1);
  });
});

describe("parseSeed", () => {
  it("accepts empty (random) and whole numbers in range", () => {
    expect(parseSeed("")).toEqual({ ok: true, seed: null });
    expect(parseSeed(" 42 ")).toEqual({ ok: true, seed: 42 });
    expect(parseSeed("2147483647")).toEqual({ ok: true, seed: 2147483647 });
  });

  it("refuses the rest with a reason", () => {
    for (const bad of ["-1", "1.5", "abc", "1e3", "2147483648"]) expect(parseSeed(bad).ok).toBe(false);
  });
});
