import { postToStorage } from "@/components/photos/upload-transport";
import type { Slot } from "@/components/photos/upload-queue";

/** A stand-in for the browser's XMLHttpRequest: the test plays storage's part. */
class FakeXhr {
  static last: FakeXhr | null = null;
  upload: { onprogress: ((event: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  status = 0;
  responseText = "";
  method = "";
  url = "";
  body: FormData | null = null;
  aborted = false;

  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
}

const slot: Slot = {
  photoId: "p1",
  url: "http://127.0.0.1:8333/visiona",
  fields: { key: "uploads/o/p1", policy: "abc", "Content-Type": "image/jpeg" },
  expiresAt: "2099-01-01T00:00:00Z",
  maxBytes: 20 * 1024 * 1024,
};

describe("postToStorage", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("posts the policy's fields, then the file, and reports progress", async () => {
    const progress: number[] = [];
    const file = new Blob(["x".repeat(100)], { type: "image/jpeg" });
    const done = postToStorage(slot, file, (loaded) => progress.push(loaded));
    const xhr = FakeXhr.last!;
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe(slot.url);
    expect([...xhr.body!.keys()]).toEqual(["key", "policy", "Content-Type", "file"]);
    xhr.upload.onprogress?.({ loaded: 40, total: 100, lengthComputable: true });
    xhr.upload.onprogress?.({ loaded: 100, total: 100, lengthComputable: true });
    xhr.status = 204;
    xhr.onload?.();
    await expect(done).resolves.toEqual({ ok: true });
    expect(progress).toEqual([40, 100]);
  });

  it("hands storage's error answer back", async () => {
    const done = postToStorage(slot, new Blob(["x"]), () => {});
    const xhr = FakeXhr.last!;
    xhr.status = 403;
    xhr.responseText = "<Error><Code>AccessDenied</Code></Error>";
    xhr.onload?.();
    await expect(done).resolves.toEqual({ ok: false, status: 403, body: "<Error><Code>AccessDenied</Code></Error>", stalled: false });
  });

  it("a network error is status 0", async () => {
    const done = postToStorage(slot, new Blob(["x"]), () => {});
    FakeXhr.last!.onerror?.();
    await expect(done).resolves.toMatchObject({ ok: false, status: 0, stalled: false });
  });

  it("stops an upload that makes no progress, instead of spinning for ever", async () => {
    const done = postToStorage(slot, new Blob(["x"]), () => {}, { stallMs: 1000 });
    const xhr = FakeXhr.last!;
    vi.advanceTimersByTime(900);
    xhr.upload.onprogress?.({ loaded: 1, total: 10, lengthComputable: true });
    vi.advanceTimersByTime(900);
    expect(xhr.aborted).toBe(false);
    vi.advanceTimersByTime(200);
    expect(xhr.aborted).toBe(true);
    await expect(done).resolves.toMatchObject({ ok: false, stalled: true });
  });

  it("leaving the page aborts it", async () => {
    const controller = new AbortController();
    const done = postToStorage(slot, new Blob(["x"]), () => {}, { signal: controller.signal });
    controller.abort();
    await expect(done).resolves.toMatchObject({ ok: false, status: 0, stalled: false });
    expect(FakeXhr.last!.aborted).toBe(true);
  });
});
