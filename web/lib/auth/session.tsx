"use client";

import {
  createContext,
  lazy,
  Suspense,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";

import type { AuthMode } from "@/lib/auth/mode";
import { renewDelayMs, retryRenewalMs, shouldRenew } from "@/lib/auth/renewal";
import { readCookie, tokenClaims } from "@/lib/auth/token";

export type Session = {
  mode: AuthMode;
  status: "loading" | "signed-in" | "signed-out";
  userId: string | null;
  /** A session token valid for at least a little while; `fresh` renews it first. */
  getToken: (options?: { fresh?: boolean }) => Promise<string | null>;
  signOut: () => Promise<void>;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

const SESSION_COOKIE = "__session";

type Renewal = { token: string | null; gone: boolean };

// The cookie is the session. React reads it as an external store: the server renders with the
// cookie of the request (the root layout passes it down), hydration with the same value, then
// the browser follows its own cookie; a renewal or a sign-out tells the store it changed.
const cookieListeners = new Set<() => void>();
function subscribeToCookie(listener: () => void): () => void {
  cookieListeners.add(listener);
  return () => {
    cookieListeners.delete(listener);
  };
}
function cookieChanged(): void {
  for (const listener of cookieListeners) listener();
}
const sessionCookie = () => readCookie(SESSION_COOKIE);

/**
 * Dev mode's session: the `__session` cookie the dev sign-in route sets (a real token of the
 * local issuer). While the page is open it renews the token ahead of its expiry (on a timer, and
 * at once when the page comes back into view or online: timers sleep with the laptop), so the
 * cookie EventSource sends stays valid. A renewal that cannot reach the web server keeps the
 * session and tries again later; only the server saying there is no session ends it.
 */
function DevSessionProvider({ initialToken, children }: { initialToken: string | null; children: ReactNode }) {
  // On the server and while hydrating: the cookie as the server read it (the same render).
  const cookie = useSyncExternalStore(subscribeToCookie, sessionCookie, () => initialToken);
  // A token the server would not renew (no session behind it): signed out, though the cookie stays.
  const [refused, setRefused] = useState<string | null>(null);
  const token = cookie && cookie !== refused ? cookie : null;
  // Renewals that failed in a row (the web server out of reach): the next one waits longer.
  const [failures, setFailures] = useState(0);
  const renewing = useRef<Promise<string | null> | null>(null);

  const renew = useCallback(async (): Promise<string | null> => {
    renewing.current ??= fetch("/api/dev/session", { method: "PUT", cache: "no-store" })
      .then(async (response): Promise<Renewal> => {
        if (response.ok) return { token: ((await response.json()) as { token: string }).token, gone: false };
        // 401: nothing to renew (signed out in another tab, or a cookie the issuer never signed).
        return { token: null, gone: response.status === 401 };
      })
      .catch((): Renewal => ({ token: null, gone: false }))
      .then(({ token: fresh, gone }) => {
        if (fresh) {
          // The answer set the cookie.
          setFailures(0);
          cookieChanged();
          return fresh;
        }
        if (gone) {
          setRefused(readCookie(SESSION_COOKIE));
          return null;
        }
        setFailures((n) => n + 1);
        return readCookie(SESSION_COOKIE);
      })
      .finally(() => {
        renewing.current = null;
      });
    return renewing.current;
  }, []);

  // Renew ahead of the expiry, or again after a failed attempt.
  useEffect(() => {
    if (!token) return;
    const delay = failures > 0 ? retryRenewalMs(failures) : renewDelayMs(token);
    const timer = setTimeout(() => {
      const current = readCookie(SESSION_COOKIE);
      // Another tab of the same browser may have renewed it already.
      if (current && current !== token && !shouldRenew(current)) cookieChanged();
      else void renew();
    }, delay);
    return () => clearTimeout(timer);
  }, [token, failures, renew]);

  // Back from sleep or back online: a timer may have slept through the renewal.
  useEffect(() => {
    if (!token) return;
    const wake = () => {
      if (document.visibilityState === "hidden") return;
      const current = readCookie(SESSION_COOKIE);
      if (!current || shouldRenew(current)) void renew();
    };
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("online", wake);
    return () => {
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("online", wake);
    };
  }, [token, renew]);

  const getToken = useCallback(
    async (options?: { fresh?: boolean }) => {
      const current = readCookie(SESSION_COOKIE);
      if (!current) return null;
      if (options?.fresh || shouldRenew(current)) return renew();
      return current;
    },
    [renew],
  );

  const signOut = useCallback(async () => {
    await fetch("/api/dev/session", { method: "DELETE" });
    cookieChanged();
    // A full load: every cached query of the signed-out user goes with the page.
    // eslint-disable-next-line @next/next/no-location-assign-relative-destination
    window.location.assign("/");
  }, []);

  const value = useMemo<Session>(
    () => ({
      mode: "dev",
      status: token ? "signed-in" : "signed-out",
      userId: token ? (tokenClaims(token)?.sub ?? null) : null,
      getToken,
      signOut,
    }),
    [token, getToken, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

// Clerk's client (about 75 kB gzipped) is loaded only in Clerk mode: dev sign-in never ships it.
const ClerkSessionProvider = lazy(() => import("@/lib/auth/clerk-session"));

export function SessionProvider({
  mode,
  clerkPublishableKey,
  initialToken = null,
  children,
}: {
  mode: AuthMode;
  clerkPublishableKey: string | null;
  initialToken?: string | null;
  children: ReactNode;
}) {
  if (mode === "dev") return <DevSessionProvider initialToken={initialToken}>{children}</DevSessionProvider>;
  return (
    <Suspense fallback={null}>
      <ClerkSessionProvider publishableKey={clerkPublishableKey}>{children}</ClerkSessionProvider>
    </Suspense>
  );
}
