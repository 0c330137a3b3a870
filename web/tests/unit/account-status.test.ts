import { actorWords, auditWords } from "@/components/account/audit-actions";
import { deletionView } from "@/components/account/deletion-status";
import { anyInProgress, EXPORT_PARTS, exportView, formatBytes, listWords } from "@/components/account/export-status";
import openapi from "@/lib/api/openapi.json";

const exp = (over: Partial<Parameters<typeof exportView>[0]>) => ({ status: "collecting", parts: [] as string[], bytes: null, error: null, expires_at: null, ...over });

type Enum = { enum: string[] };
const schemas = (openapi as unknown as { components: { schemas: Record<string, { properties: Record<string, Enum> }> } }).components.schemas;

describe("export states in words", () => {
  it("has words for every state the OpenAPI lists", () => {
    for (const status of schemas.Export!.properties.status!.enum) {
      const view = exportView(exp({ status }));
      expect(view.label, status).not.toBe(status);
      expect(view.description, status).not.toBe("");
    }
  });

  it("says which parts are still being gathered, and moves forward as they come in", () => {
    const none = exportView(exp({ parts: [] }));
    expect(none).toMatchObject({ label: "Collecting", inProgress: true, tone: "info" });
    expect(none.description).toBe("Gathering your payments and credits, images, prompts and photos and models.");
    const two = exportView(exp({ parts: ["billing", "training"] }));
    expect(two.description).toBe("Gathering your images and prompts (2 of 4 parts in).");
    expect(two.progress!).toBeGreaterThan(none.progress!);
    const all = exportView(exp({ parts: [...EXPORT_PARTS] }));
    expect(all.description).toMatch(/Every part is in/);
    const packing = exportView(exp({ status: "assembling", parts: [...EXPORT_PARTS] }));
    expect(packing.progress!).toBeGreaterThan(all.progress!);
    expect(packing.progress!).toBeLessThan(100);
  });

  it("says a ready export's size, and that an old one is gone", () => {
    const now = Date.parse("2026-12-07T00:00:00Z");
    expect(exportView(exp({ status: "ready", bytes: 5228, expires_at: "2026-12-14T00:00:00Z" }), now)).toMatchObject({
      label: "Ready",
      description: "Your data (5.1 KB) is ready to download.",
      inProgress: false,
      progress: null,
    });
    // Past its keeping date: the archive is gone even if the list still says ready.
    expect(exportView(exp({ status: "ready", expires_at: "2026-12-06T00:00:00Z" }), now).label).toBe("Expired");
    expect(exportView(exp({ status: "failed" })).description).toMatch(/start a new export/);
  });

  it("knows when a list still has work in progress", () => {
    expect(anyInProgress([exp({ status: "ready" }), exp({ status: "assembling" })])).toBe(true);
    expect(anyInProgress([exp({ status: "ready" }), exp({ status: "failed" })])).toBe(false);
  });

  it("formats sizes and lists", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(3 * 1024 * 1024)).toBe("3.0 MB");
    expect(formatBytes(250 * 1024 * 1024)).toBe("250 MB");
    expect(formatBytes(null)).toBe("");
    expect(listWords(["a"])).toBe("a");
    expect(listWords(["a", "b", "c"])).toBe("a, b and c");
  });
});

describe("account deletion progress in words", () => {
  const del = (over: Partial<Parameters<typeof deletionView>[0]>) => ({ status: "scheduled", round: 0, services: {}, removed: 0, ...over });

  it("has words for every status the OpenAPI lists, and only ends at completed", () => {
    for (const status of schemas.Deletion!.properties.status!.enum) {
      const view = deletionView(del({ status }));
      expect(view.label, status).not.toBe(status);
      expect(view.done, status).toBe(status === "completed");
    }
  });

  it("moves forward through the erasure", () => {
    const scheduled = deletionView(del({}));
    const erasing = deletionView(del({ status: "erasing", round: 1, services: { billing: "done", training: "pending", generation: "pending" }, removed: 42 }));
    const more = deletionView(del({ status: "erasing", round: 1, services: { billing: "done", training: "done", generation: "pending" }, removed: 60 }));
    const finishing = deletionView(del({ status: "finishing", round: 2, removed: 61 }));
    const completed = deletionView(del({ status: "completed", removed: 61 }));
    const steps = [scheduled, erasing, more, finishing, completed].map((v) => v.progress);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(completed.progress).toBe(100);
    expect(erasing.description).toBe("Removing your photos, models, images and records. 42 items removed so far. Still working on: images and photos and models.");
    expect(deletionView(del({ status: "erasing", round: 2, services: { billing: "done" }, removed: 1 })).description).toMatch(/^Checking again/);
  });
});

describe("the audit trail in words", () => {
  it("says each recorded action as a sentence", () => {
    expect(auditWords({ actor: "user", action: "billing.checkout_created", details: { kind: "pack", item_id: "starter" } })).toBe("Opened a checkout for the starter credit pack");
    expect(auditWords({ actor: "user", action: "billing.checkout_created", details: { kind: "plan", item_id: "creator" } })).toBe("Opened a checkout for the creator plan");
    expect(auditWords({ actor: "user", action: "billing.portal_opened", details: {} })).toBe("Opened the billing portal");
    expect(auditWords({ actor: "user", action: "account.export_requested", details: {} })).toMatch(/copy of the account's data/);
    expect(auditWords({ actor: "user", action: "account.export_link_issued", details: {} })).toMatch(/download link/);
    expect(auditWords({ actor: "user", action: "account.erasure_requested", details: {} })).toBe("Asked to delete the account");
    expect(auditWords({ actor: "operator", action: "credits.adjusted", details: { balance: 300 } })).toBe("Credits corrected by support (balance now 300)");
    expect(auditWords({ actor: "system", action: "models.sweep_done", details: {} })).toBe("Models sweep done");
  });

  it("says what support did on the account, and the reason support gave", () => {
    const op = (action: string, details: Record<string, unknown>) => auditWords({ actor: "operator", action, details });
    expect(op("admin.credits.granted", { amount: 25, reason: "ticket 42: goodwill", operator: "ab".repeat(32) })).toBe(
      "Support added 25 credits: “ticket 42: goodwill”",
    );
    expect(op("admin.credits.clawed_back", { amount: 5, reason: "double refund" })).toBe("Support took back 5 credits: “double refund”");
    expect(op("admin.job.failed", { kind: "generation", reason: "stuck at the provider" })).toBe(
      "Support stopped your generation; credits it held were released: “stuck at the provider”",
    );
    expect(op("admin.job.retried", { kind: "training", reason: "" })).toBe("Support restarted your stuck training");
    expect(op("admin.job.retried", { kind: "mystery" })).toBe("Support restarted your stuck job");
    expect(op("admin.user.viewed", { reason: "ticket 7" })).toMatch(/^Support looked at your account \(never your photos.*: “ticket 7”$/);
  });

  it("names who acted", () => {
    expect(actorWords("user")).toBe("You");
    expect(actorWords("operator")).toBe("Support");
    expect(actorWords("system")).toBe("Visiona");
    for (const actor of schemas.AuditEntry!.properties.actor!.enum) expect(actorWords(actor)).not.toBe(actor);
  });
});
