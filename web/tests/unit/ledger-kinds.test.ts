import { describeEntry, kindLabel, KIND_LABELS, referenceWords, signed } from "@/components/billing/ledger-kinds";
import openapi from "@/lib/api/openapi.json";

const entry = (over: Partial<Parameters<typeof describeEntry>[0]>) => ({
  kind: "purchase",
  delta_balance: 0,
  delta_held: 0,
  balance_after: 0,
  available_after: 0,
  reference: null,
  reason: null,
  ...over,
});

describe("ledger entries in words", () => {
  it("has words for every kind the gateway's OpenAPI lists", () => {
    const kinds = (openapi as { components: { schemas: { LedgerEntry: { properties: { kind: { enum: string[] } } } } } }).components.schemas.LedgerEntry.properties.kind.enum;
    expect(kinds.length).toBeGreaterThan(5);
    for (const kind of kinds) expect(KIND_LABELS[kind], kind).toBeTruthy();
  });

  it("still reads an unknown kind as words", () => {
    expect(kindLabel("promo_credit")).toBe("Promo credit");
    expect(kindLabel("")).toBe("Other");
  });

  it("signs amounts with a real minus and a plus, not only colour", () => {
    expect(signed(200)).toBe("+200");
    expect(signed(-1500)).toBe("\u22121,500");
    expect(signed(0)).toBe("0");
  });

  it("shows a purchase as credits added, with the balance after", () => {
    const view = describeEntry(entry({ kind: "purchase", delta_balance: 200, balance_after: 200, available_after: 200, reference: "cs_test_1" }));
    expect(view).toMatchObject({ label: "Credit pack bought", amount: "+200", tone: "credit", after: "200", detail: "through Stripe Checkout" });
    expect(view.amountSpoken).toBe("200 credits added");
  });

  it("shows a hold as reserved, not spent, and the available part of the balance", () => {
    const view = describeEntry(entry({ kind: "hold", delta_held: 150, balance_after: 200, available_after: 50, reference: "training:abc" }));
    expect(view).toMatchObject({ label: "Reserved for a job", amount: "150 on hold", tone: "held", after: "200 (50 available)", detail: "for a training" });
  });

  it("shows a capture as spent and a release as given back, with why", () => {
    const capture = describeEntry(entry({ kind: "capture", delta_balance: -8, delta_held: -8, balance_after: 192, available_after: 192, reference: "generation:g", reason: "succeeded" }));
    expect(capture).toMatchObject({ label: "Spent", amount: "\u22128", tone: "debit", detail: "for images" });
    expect(capture.amountSpoken).toBe("8 credits taken");
    const release = describeEntry(entry({ kind: "release", delta_held: -150, balance_after: 200, available_after: 200, reference: "training:t", reason: "failed" }));
    expect(release).toMatchObject({ label: "Released, not used", amount: "150 released", tone: "neutral", detail: "for a training · the job failed" });
    const partial = describeEntry(entry({ kind: "release", delta_held: -4, reference: "generation:g", reason: "succeeded" }));
    expect(partial.detail).toBe("for images · the job used less than reserved");
  });

  it("shows a refund's clawback and a support correction with its reason", () => {
    expect(describeEntry(entry({ kind: "refund_clawback", delta_balance: -200, reference: "ch_1" }))).toMatchObject({
      label: "Refund: credits taken back",
      amount: "\u2212200",
      detail: "on a Stripe payment",
    });
    expect(describeEntry(entry({ kind: "adjustment", delta_balance: 25, reason: "goodwill for a failed job" }))).toMatchObject({
      amount: "+25",
      detail: "goodwill for a failed job",
    });
    expect(describeEntry(entry({ kind: "plan_grant", delta_balance: 600, reference: "in_1" })).detail).toBe("on a Stripe invoice");
  });

  it("does not invent a reference it does not know", () => {
    expect(referenceWords("something-else")).toBeNull();
    expect(referenceWords(null)).toBeNull();
    expect(describeEntry(entry({})).amount).toBe("0");
  });
});
