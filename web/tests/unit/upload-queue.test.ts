import {
  contentTypeOf,
  DEFAULT_MAX_BYTES,
  initialQueue,
  MAX_CONCURRENT,
  nextToStart,
  queueReducer,
  refusalOf,
  slotUsable,
  storageFailure,
  summarize,
  summaryText,
  type NewFile,
  type QueueAction,
  type QueueState,
  type Slot,
} from "@/components/photos/upload-queue";
import type { Schemas } from "@/lib/api/client";

import { photoWith } from "./photos";

const MB = 1024 * 1024;

function file(key: string, overrides: Partial<NewFile> = {}): NewFile {
  return { key, name: `${key}.jpg`, size: 2 * MB, type: "image/jpeg", previewUrl: `blob:${key}`, ...overrides };
}

function slot(photoId: string, overrides: Partial<Slot> = {}): Slot {
  return {
    photoId,
    url: "http://127.0.0.1:8333/visiona",
    fields: { key: `uploads/x/${photoId}` },
    expiresAt: new Date(Date.now() + 15 * 60_000).toISOString(),
    maxBytes: 20 * MB,
    ...overrides,
  };
}

function photo(id: string, status: Schemas["Photo"]["status"], reasons: string[] = []): Schemas["Photo"] {
  return photoWith({ id, status, reasons });
}

function run(state: QueueState, ...actions: QueueAction[]): QueueState {
  return actions.reduce(queueReducer, state);
}

/** File "a" added, started and given photo p1's slot: its bytes are on their way to storage. */
const SENDING_A: QueueAction[] = [{ type: "add", files: [file("a")] }, { type: "start", key: "a" }, { type: "slot", key: "a", slot: slot("p1") }];

function phaseOf(state: QueueState, key: string) {
  return state.items.find((item) => item.key === key)?.phase;
}

describe("contentTypeOf", () => {
  it("takes the four accepted kinds by their type", () => {
    expect(contentTypeOf("a.jpg", "image/jpeg")).toBe("image/jpeg");
    expect(contentTypeOf("a.png", "image/png")).toBe("image/png");
    expect(contentTypeOf("a.webp", "image/webp")).toBe("image/webp");
    expect(contentTypeOf("a.heic", "image/heic")).toBe("image/heic");
    expect(contentTypeOf("a.heif", "image/heif")).toBe("image/heif");
  });

  it("falls back to the extension when the browser gives no type (HEIC on most systems)", () => {
    expect(contentTypeOf("IMG_0001.HEIC", "")).toBe("image/heic");
    expect(contentTypeOf("photo.jpeg", "application/octet-stream")).toBe("image/jpeg");
  });

  it("refuses other kinds, whatever their extension", () => {
    expect(contentTypeOf("anim.gif", "image/gif")).toBeNull();
    expect(contentTypeOf("doc.jpg", "application/pdf")).toBeNull();
    expect(contentTypeOf("notes.txt", "")).toBeNull();
  });
});

describe("refusalOf", () => {
  it("says which kind is refused and which are taken", () => {
    expect(refusalOf({ name: "a.gif", size: 10, type: "image/gif" }, DEFAULT_MAX_BYTES)).toBe(
      "GIF images are not accepted. Use JPEG, PNG, WebP or HEIC photos.",
    );
    expect(refusalOf({ name: "notes.txt", size: 10, type: "text/plain" }, DEFAULT_MAX_BYTES)).toBe(
      "A .txt file is not a photo we accept. Use JPEG, PNG, WebP or HEIC photos.",
    );
  });

  it("refuses empty files and files over the limit, with both sizes", () => {
    expect(refusalOf({ name: "a.jpg", size: 0, type: "image/jpeg" }, DEFAULT_MAX_BYTES)).toMatch(/empty/);
    expect(refusalOf({ name: "a.jpg", size: 25 * MB, type: "image/jpeg" }, 20 * MB)).toBe(
      "This photo is 25 MB; the limit is 20 MB. Export it smaller and try again.",
    );
  });

  it("lets a good photo go", () => {
    expect(refusalOf({ name: "a.jpg", size: 20 * MB, type: "image/jpeg" }, 20 * MB)).toBeNull();
  });
});

describe("queueReducer", () => {
  it("queues good files and refuses bad ones before any upload (without their preview)", () => {
    const state = run(initialQueue, {
      type: "add",
      files: [file("a"), file("gif", { name: "x.gif", type: "image/gif" }), file("big", { size: 21 * MB }), file("empty", { size: 0 })],
    });
    expect(state.items.map((item) => item.phase.kind)).toEqual(["queued", "refused", "refused", "refused"]);
    expect(state.items.find((item) => item.key === "gif")?.previewUrl).toBeNull();
    expect(phaseOf(state, "big")).toEqual({ kind: "refused", message: "This photo is 21 MB; the limit is 20 MB. Export it smaller and try again." });
  });

  it("walks queued → uploading(progress) → completing → verdict", () => {
    let state = run(initialQueue, { type: "add", files: [file("a")] }, { type: "start", key: "a" });
    expect(phaseOf(state, "a")).toEqual({ kind: "uploading", loaded: 0, total: 2 * MB });
    state = run(state, { type: "slot", key: "a", slot: slot("p1") }, { type: "progress", key: "a", loaded: MB, total: 2 * MB });
    expect(phaseOf(state, "a")).toEqual({ kind: "uploading", loaded: MB, total: 2 * MB });
    state = run(state, { type: "uploaded", key: "a" });
    expect(phaseOf(state, "a")).toEqual({ kind: "completing" });
    expect(state.items[0]?.uploaded).toBe(true);
    state = run(state, { type: "verdict", key: "a", photo: photo("p1", "accepted") });
    expect(phaseOf(state, "a")).toMatchObject({ kind: "verdict", photo: { status: "accepted" } });
  });

  it("learns the limit from a slot and refuses a file over it", () => {
    const state = run(
      initialQueue,
      { type: "add", files: [file("a", { size: 12 * MB })] },
      { type: "start", key: "a" },
      { type: "slot", key: "a", slot: slot("p1", { maxBytes: 10 * MB }) },
    );
    expect(state.maxBytes).toBe(10 * MB);
    expect(phaseOf(state, "a")).toMatchObject({ kind: "refused" });
    expect(state.items[0]?.slot).toBeNull();
    // A later file over the learnt limit is refused at once.
    const later = run(state, { type: "add", files: [file("b", { size: 11 * MB })] });
    expect(phaseOf(later, "b")).toMatchObject({ kind: "refused" });
  });

  it("fails with a reason, then a retry queues it again and re-uploads", () => {
    let state = run(
      initialQueue,
      ...SENDING_A,
      { type: "fail", key: "a", failure: { reason: "network", message: "offline" } },
    );
    expect(phaseOf(state, "a")).toEqual({ kind: "failed", failure: { reason: "network", message: "offline" } });
    expect(state.items[0]?.slot?.photoId).toBe("p1");
    state = run(state, { type: "retry", key: "a" });
    expect(phaseOf(state, "a")).toEqual({ kind: "queued" });
    state = run(state, { type: "start", key: "a" });
    expect(phaseOf(state, "a")).toMatchObject({ kind: "uploading", loaded: 0 });
    expect(state.items[0]?.attempts).toBe(2);
  });

  it("retries only the verdict when the bytes already reached storage", () => {
    const state = run(
      initialQueue,
      ...SENDING_A,
      { type: "uploaded", key: "a" },
      { type: "fail", key: "a", failure: { reason: "timeout", message: "slow" } },
      { type: "retry", key: "a" },
      { type: "start", key: "a" },
    );
    expect(phaseOf(state, "a")).toEqual({ kind: "completing" });
  });

  it("uploads again when the gateway says nothing arrived, and drops a dead slot", () => {
    const base = run(initialQueue, ...SENDING_A, { type: "uploaded", key: "a" });
    const notUploaded = run(base, { type: "fail", key: "a", failure: { reason: "api", message: "x" }, notUploaded: true });
    expect(notUploaded.items[0]).toMatchObject({ uploaded: false, slot: { photoId: "p1" } });
    const dropped = run(base, { type: "fail", key: "a", failure: { reason: "expired", message: "x" }, dropSlot: true });
    expect(dropped.items[0]).toMatchObject({ uploaded: false, slot: null });
  });

  it("ignores actions that do not fit the item's phase", () => {
    const state = run(initialQueue, { type: "add", files: [file("a")] });
    expect(run(state, { type: "progress", key: "a", loaded: 1, total: 2 })).toBe(state);
    expect(run(state, { type: "verdict", key: "a", photo: photo("p", "accepted") })).toBe(state);
    expect(run(state, { type: "retry", key: "a" })).toBe(state);
    expect(run(state, { type: "fail", key: "a", failure: { reason: "network", message: "x" } })).toBe(state);
    expect(run(state, { type: "start", key: "nope" })).toBe(state);
  });

  it("never removes an item in flight; clears finished ones on demand", () => {
    let state = run(
      initialQueue,
      { type: "add", files: [file("a"), file("b"), file("gif", { type: "image/gif", name: "g.gif" })] },
      { type: "start", key: "a" },
    );
    expect(run(state, { type: "remove", key: "a" })).toBe(state);
    state = run(state, { type: "remove", key: "b" });
    expect(state.items.map((item) => item.key)).toEqual(["a", "gif"]);
    state = run(state, { type: "clearFinished" });
    expect(state.items.map((item) => item.key)).toEqual(["a"]);
  });
});

describe("nextToStart", () => {
  it("keeps at most three in flight, oldest first", () => {
    let state = run(initialQueue, { type: "add", files: ["a", "b", "c", "d", "e"].map((key) => file(key)) });
    expect(MAX_CONCURRENT).toBe(3);
    expect(nextToStart(state).map((item) => item.key)).toEqual(["a", "b", "c"]);
    state = run(state, { type: "start", key: "a" }, { type: "start", key: "b" });
    expect(nextToStart(state).map((item) => item.key)).toEqual(["c"]);
    state = run(state, { type: "start", key: "c" });
    expect(nextToStart(state)).toEqual([]);
    // A validation still counts as in flight; a verdict frees the place.
    state = run(state, { type: "slot", key: "a", slot: slot("p1") }, { type: "uploaded", key: "a" });
    expect(nextToStart(state)).toEqual([]);
    state = run(state, { type: "verdict", key: "a", photo: photo("p1", "rejected", ["no_face"]) });
    expect(nextToStart(state).map((item) => item.key)).toEqual(["d"]);
  });

  it("frees a place when an upload fails, and the failed one waits for its retry", () => {
    let state = run(initialQueue, { type: "add", files: ["a", "b", "c", "d"].map((key) => file(key)) });
    state = run(state, { type: "start", key: "a" }, { type: "start", key: "b" }, { type: "start", key: "c" });
    state = run(state, { type: "fail", key: "b", failure: { reason: "stalled", message: "x" } });
    expect(nextToStart(state).map((item) => item.key)).toEqual(["d"]);
  });
});

describe("slotUsable", () => {
  it("wants a minute left on the policy", () => {
    const now = Date.parse("2026-12-07T04:00:00Z");
    expect(slotUsable(null, now)).toBe(false);
    expect(slotUsable(slot("p", { expiresAt: "2026-12-07T04:05:00Z" }), now)).toBe(true);
    expect(slotUsable(slot("p", { expiresAt: "2026-12-07T04:00:30Z" }), now)).toBe(false);
  });
});

describe("storageFailure", () => {
  it("a dropped connection keeps the slot", () => {
    expect(storageFailure(0, "")).toMatchObject({ failure: { reason: "network" }, dropSlot: false });
  });

  it("an expired policy needs a new slot", () => {
    const body = "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>";
    expect(storageFailure(403, body)).toMatchObject({ failure: { reason: "expired", code: "AccessDenied" }, dropSlot: true });
  });

  it("too large, refused and busy answers read differently", () => {
    expect(storageFailure(400, "<Error><Code>EntityTooLarge</Code></Error>").failure.message).toMatch(/larger than allowed/);
    expect(storageFailure(503, "<Error><Code>SlowDown</Code></Error>")).toMatchObject({ failure: { reason: "storage" }, dropSlot: false });
    expect(storageFailure(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>")).toMatchObject({
      failure: { code: "SignatureDoesNotMatch" },
      dropSlot: true,
    });
  });
});

describe("summarize", () => {
  it("counts each outcome and says it in one line", () => {
    const state = run(
      initialQueue,
      { type: "add", files: [file("a"), file("b"), file("c"), file("d"), file("gif", { name: "g.gif", type: "image/gif" })] },
      { type: "start", key: "a" },
      { type: "slot", key: "a", slot: slot("pa") },
      { type: "uploaded", key: "a" },
      { type: "verdict", key: "a", photo: photo("pa", "accepted") },
      { type: "start", key: "b" },
      { type: "slot", key: "b", slot: slot("pb") },
      { type: "uploaded", key: "b" },
      { type: "verdict", key: "b", photo: photo("pb", "rejected", ["blurry", "no_face"]) },
      { type: "start", key: "c" },
      { type: "fail", key: "c", failure: { reason: "network", message: "x" } },
    );
    const summary = summarize(state);
    expect(summary).toMatchObject({ total: 5, queued: 1, accepted: 1, rejected: 1, failed: 1, refused: 1 });
    expect(summaryText(summary)).toBe("1 uploading · 1 accepted · 1 rejected · 1 failed, can be retried · 1 not sent");
  });
});
