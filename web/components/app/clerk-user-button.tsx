"use client";

import { UserButton } from "@clerk/nextjs";

/** Clerk's account menu (profile, sessions, sign out), in its own chunk: Clerk mode only. */
export default function ClerkUserButton({ showName = false }: { showName?: boolean }) {
  return <UserButton showName={showName} />;
}
