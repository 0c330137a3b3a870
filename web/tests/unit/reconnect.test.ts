import { afterStreamError, FIRST_RECONNECT_MS, MAX_RECONNECT_MS, reconnectDelayMs, streamUrl } from "@/lib/events/reconnect";

describe("after a stream error", () => {
  it("leaves a dropped connection to the browser, which reconnects with Last-Event-ID", () => {
    expect(afterStreamError(0)).toBe("browser-retries"); // CONNECTING
    expect(afterStreamError(1)).toBe("browser-retries");
  });

  it("reopens the stream itself when the browser gave up (an answer other than 200)", () => {
    expect(afterStreamError(2)).toBe("reopen"); // CLOSED
  });
});

describe("reconnect backoff", () => {
  it("starts near a second and doubles, with jitter between half and all of it", () => {
    expect(reconnectDelayMs(0, () => 1)).toBe(FIRST_RECONNECT_MS);
    expect(reconnectDelayMs(0, () => 0)).toBe(FIRST_RECONNECT_MS / 2);
    expect(reconnectDelayMs(1, () => 1)).toBe(2 * FIRST_RECONNECT_MS);
    expect(reconnectDelayMs(3, () => 1)).toBe(8 * FIRST_RECONNECT_MS);
  });

  it("never waits longer than its ceiling, however many failures", () => {
    expect(reconnectDelayMs(50, () => 1)).toBe(MAX_RECONNECT_MS);
    expect(reconnectDelayMs(10_000, () => 0.999)).toBeLessThanOrEqual(MAX_RECONNECT_MS);
  });

  it("spreads pages that fail together", () => {
    const delays = new Set([0, 0.25, 0.5, 0.75].map((r) => reconnectDelayMs(2, () => r)));
    expect(delays.size).toBe(4);
  });
});

describe("stream URL", () => {
  it("is the gateway's /v1/events, resuming after the last id seen", () => {
    expect(streamUrl("http://localhost:8000", "http://localhost:3000/dashboard", null)).toBe("http://localhost:8000/v1/events");
    expect(streamUrl("http://localhost:8000", "http://localhost:3000/dashboard", "gw-1-42")).toBe(
      "http://localhost:8000/v1/events?last_event_id=gw-1-42",
    );
  });

  it("is on the page's own origin when the gateway shares it (production)", () => {
    expect(streamUrl("", "https://visiona.example/gallery", "a b")).toBe("https://visiona.example/v1/events?last_event_id=a+b");
  });
});
