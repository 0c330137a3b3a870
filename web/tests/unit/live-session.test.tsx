import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, renderHook } from "@testing-library/react";
import type { ReactNode } from "react";

import { ApiContext, createApiClient } from "@/lib/api/client";
import { SessionProvider, useSession } from "@/lib/auth/session";
import { readCookie, secondsLeft } from "@/lib/auth/token";
import { useEventStream } from "@/lib/events/use-event-stream";

import { fakeToken } from "./tokens";

// The browser's EventSource, driven by the test: `opened()`, `emit()`, `fail(readyState)`.
class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static all: FakeEventSource[] = [];
  readonly url: string;
  readonly withCredentials: boolean;
  readyState = 0;
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  /** The session cookie when the stream was opened: what the browser would have sent. */
  readonly cookie: string;
  private readonly listeners = new Map<string, ((event: MessageEvent) => void)[]>();

  constructor(url: string | URL, init?: { withCredentials?: boolean }) {
    this.url = String(url);
    this.withCredentials = Boolean(init?.withCredentials);
    this.cookie = document.cookie;
    FakeEventSource.all.push(this);
  }
  addEventListener(type: string, listener: (event: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close() {
    this.readyState = FakeEventSource.CLOSED;
  }
  opened() {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.(new Event("open"));
  }
  emit(type: string, data: unknown, id: string) {
    const event = new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id });
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
  fail(readyState: number) {
    this.readyState = readyState;
    this.onerror?.(new Event("error"));
  }
}

const GATEWAY = "http://gateway.test";
const latest = () => FakeEventSource.all.at(-1)!;
const nowS = () => Math.floor(Date.now() / 1000);
const sessionToken = (ttlS: number, sub = "user_alice") => fakeToken({ sub, iat: nowS(), exp: nowS() + ttlS });

function setCookie(token: string | null) {
  document.cookie = token ? `__session=${token}; path=/` : "__session=; path=/; max-age=0";
}

type Answer = { status: number; token?: string } | "offline";
let answers: Answer[] = [];
const renewals: number[] = [];

// The web server's PUT /api/dev/session: answers as the test says, setting the cookie as the
// real route does.
function fakeFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  if (String(input) !== "/api/dev/session" || init?.method !== "PUT") throw new Error(`unexpected fetch ${String(input)}`);
  renewals.push(Date.now());
  const answer = answers.shift() ?? { status: 200 };
  if (answer === "offline") return Promise.reject(new TypeError("Failed to fetch"));
  if (answer.status !== 200) return Promise.resolve(new Response(JSON.stringify({ code: "not_signed_in" }), { status: answer.status }));
  const token = answer.token ?? sessionToken(30);
  setCookie(token);
  return Promise.resolve(new Response(JSON.stringify({ token }), { status: 200 }));
}

let queryClient = new QueryClient();

function wrapper({ children }: { children: ReactNode }) {
  return (
    <SessionProvider mode="dev" clerkPublishableKey={null}>
      <QueryClientProvider client={queryClient}>
        <ApiContext.Provider value={{ api: createApiClient(GATEWAY, async () => null), baseUrl: GATEWAY }}>{children}</ApiContext.Provider>
      </QueryClientProvider>
    </SessionProvider>
  );
}

const live = () => renderHook(() => ({ stream: useEventStream(), session: useSession() }), { wrapper });

async function advance(ms: number) {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

/** A page starting the stream, signed in for ten minutes: the stream is asked for, not yet open. */
async function liveSignedIn() {
  setCookie(sessionToken(600));
  const view = live();
  await advance(0);
  return view;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubGlobal("EventSource", FakeEventSource);
  vi.stubGlobal("fetch", vi.fn(fakeFetch));
  FakeEventSource.all = [];
  queryClient = new QueryClient();
  answers = [];
  renewals.length = 0;
});

afterEach(() => {
  setCookie(null);
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("the live stream", () => {
  it("opens once, with the session cookie, at the gateway's /v1/events", async () => {
    const { result } = await liveSignedIn();
    expect(FakeEventSource.all).toHaveLength(1);
    expect(latest().url).toBe(`${GATEWAY}/v1/events`);
    expect(latest().withCredentials).toBe(true);
    expect(renewals).toHaveLength(0);
    act(() => latest().opened());
    expect(result.current.stream).toBe("open");
  });

  it("leaves a dropped connection to the browser's own reconnect", async () => {
    const { result } = await liveSignedIn();
    act(() => latest().opened());
    act(() => latest().fail(FakeEventSource.CONNECTING));
    expect(result.current.stream).toBe("reconnecting");
    await advance(60_000);
    expect(FakeEventSource.all).toHaveLength(1);
    act(() => latest().opened());
    expect(result.current.stream).toBe("open");
  });

  it("after a refusal (an expired session) renews the session and resumes after the last event", async () => {
    const { result } = await liveSignedIn();
    const first = latest();
    act(() => first.opened());
    act(() => first.emit("billing.credits.changed.v1", { cause: "hold", available: 1 }, "gw-7"));
    // The cookie expired meanwhile (a tab asleep): the gateway answers 401, the browser gives up.
    setCookie(sessionToken(-30));
    act(() => first.fail(FakeEventSource.CLOSED));
    expect(result.current.stream).toBe("reconnecting");
    await advance(1000);
    expect(renewals).toHaveLength(1);
    expect(FakeEventSource.all).toHaveLength(2);
    expect(latest().url).toBe(`${GATEWAY}/v1/events?last_event_id=gw-7`);
    // It went with a renewed cookie.
    const sent = readCookie("__session", latest().cookie)!;
    expect(secondsLeft(sent)).toBeGreaterThan(0);
    act(() => latest().opened());
    expect(result.current.stream).toBe("open");
  });

  it("re-reads everything shown when a new stream cannot resume (no event seen yet)", async () => {
    await liveSignedIn();
    act(() => latest().opened());
    const invalidate = vi.spyOn(queryClient, "invalidateQueries");
    act(() => latest().fail(FakeEventSource.CLOSED));
    await advance(1000);
    expect(latest().url).toBe(`${GATEWAY}/v1/events`);
    expect(invalidate).not.toHaveBeenCalled();
    act(() => latest().opened());
    const keys = invalidate.mock.calls.map(([filters]) => filters?.queryKey?.[0]);
    expect(keys).toEqual(expect.arrayContaining(["balance", "models", "photos", "images"]));
  });

  it("does not re-read what a resumed stream will replay", async () => {
    await liveSignedIn();
    act(() => latest().opened());
    act(() => latest().emit("training.model.progressed.v1", { progress: 0.5 }, "gw-3"));
    const invalidate = vi.spyOn(queryClient, "invalidateQueries");
    act(() => latest().fail(FakeEventSource.CLOSED));
    await advance(1000);
    act(() => latest().opened());
    expect(latest().url).toContain("last_event_id=gw-3");
    expect(invalidate).not.toHaveBeenCalled();
  });

  it("backs off while the gateway keeps refusing, and tries at once when back online", async () => {
    await liveSignedIn();
    for (let failure = 0; failure < 4; failure += 1) {
      act(() => latest().fail(FakeEventSource.CLOSED));
      await advance(1000 * 2 ** failure);
    }
    expect(FakeEventSource.all).toHaveLength(5);
    act(() => latest().fail(FakeEventSource.CLOSED));
    // The fifth wait is 8–16 s: not over after one second…
    await advance(1000);
    expect(FakeEventSource.all).toHaveLength(5);
    // …unless the browser says it is back online.
    await act(async () => {
      window.dispatchEvent(new Event("online"));
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(FakeEventSource.all).toHaveLength(6);
  });

  it("closes the stream when the page goes", async () => {
    const { unmount } = await liveSignedIn();
    unmount();
    expect(latest().readyState).toBe(FakeEventSource.CLOSED);
  });
});

describe("the dev session", () => {
  it("renews its token ahead of the expiry while the page is open", async () => {
    setCookie(sessionToken(30));
    const { result } = live();
    await advance(19_000);
    expect(renewals).toHaveLength(0);
    await advance(2_000);
    expect(renewals).toHaveLength(1);
    // And again a third of the new token's life before its end.
    await advance(20_000);
    expect(renewals).toHaveLength(2);
    expect(result.current.session.status).toBe("signed-in");
  });

  it("keeps the session when the web server is out of reach, and tries again", async () => {
    setCookie(sessionToken(30));
    answers = ["offline", { status: 503 }];
    const { result } = live();
    await advance(20_000);
    expect(renewals).toHaveLength(1);
    expect(result.current.session.status).toBe("signed-in");
    await advance(1_000);
    expect(renewals).toHaveLength(2);
    await advance(2_000);
    expect(renewals).toHaveLength(3);
    expect(result.current.session.status).toBe("signed-in");
    expect(FakeEventSource.all.at(-1)!.readyState).not.toBe(FakeEventSource.CLOSED);
  });

  it("ends when the server says there is no session to renew", async () => {
    setCookie(sessionToken(30));
    answers = [{ status: 401 }];
    const { result } = live();
    const stream = await (async () => {
      await advance(0);
      return latest();
    })();
    await advance(21_000);
    expect(result.current.session.status).toBe("signed-out");
    expect(stream.readyState).toBe(FakeEventSource.CLOSED);
  });

  it("renews at once when the page comes back into view past its renewal time", async () => {
    await liveSignedIn();
    expect(renewals).toHaveLength(0);
    // A laptop asleep: the clock jumps past the expiry, no timer has fired yet.
    vi.setSystemTime(Date.now() + 700_000);
    await act(async () => {
      document.dispatchEvent(new Event("visibilitychange"));
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(renewals).toHaveLength(1);
  });
});
