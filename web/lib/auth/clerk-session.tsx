"use client";

import { ClerkProvider, useAuth, useClerk } from "@clerk/nextjs";
import { useMemo, type ReactNode } from "react";

import { SessionContext, type Session } from "@/lib/auth/session";

function ClerkSession({ children }: { children: ReactNode }) {
  const { isLoaded, isSignedIn, userId, getToken } = useAuth();
  const clerk = useClerk();
  const value = useMemo<Session>(
    () => ({
      mode: "clerk",
      status: !isLoaded ? "loading" : isSignedIn ? "signed-in" : "signed-out",
      userId: userId ?? null,
      getToken: (options) => getToken({ skipCache: options?.fresh ?? false }),
      signOut: () => clerk.signOut({ redirectUrl: "/" }),
    }),
    [isLoaded, isSignedIn, userId, getToken, clerk],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** Clerk mode's session: Clerk's provider and the token its client keeps fresh. */
export default function ClerkSessionProvider({ publishableKey, children }: { publishableKey: string | null; children: ReactNode }) {
  return (
    <ClerkProvider publishableKey={publishableKey ?? undefined}>
      <ClerkSession>{children}</ClerkSession>
    </ClerkProvider>
  );
}
