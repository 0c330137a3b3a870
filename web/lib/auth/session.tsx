"use client";

import { createContext, lazy, Suspense, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";

import type { AuthMode } from "@/lib/auth/mode";
import { readCookie, secondsLeft, tokenClaims } from "@/lib/auth/token";

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
// Renew a dev token this long before it expires (Clerk's own client renews about a minute ahead).
const RENEW_AHEAD_S = 60;

function DevSessionProvider({ initialToken, children }: { initialToken: string | null; children: ReactNode }) {
  // The server read the same cookie for this render: no mismatch on hydration.
  const [token, setToken] = useState<string | null>(initialToken);
  const renewing = useRef<Promise<string | null> | null>(null);

  const renew = useCallback(async (): Promise<string | null> => {
    renewing.current ??= fetch("/api/dev/session", { method: "PUT" })
      .then(async (response) => (response.ok ? ((await response.json()) as { token: string }).token : null))
      .catch(() => null)
      .then((fresh) => {
        setToken(fresh);
        return fresh;
      })
      .finally(() => {
        renewing.current = null;
      });
    return renewing.current;
  }, []);

  const getToken = useCallback(
    async (options?: { fresh?: boolean }) => {
      const current = readCookie(SESSION_COOKIE);
      if (!current) return null;
      const left = secondsLeft(current);
      if (options?.fresh || left === null || left < RENEW_AHEAD_S) return renew();
      return current;
    },
    [renew],
  );

  const signOut = useCallback(async () => {
    await fetch("/api/dev/session", { method: "DELETE" });
    setToken(null);
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
