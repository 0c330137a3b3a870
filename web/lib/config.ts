import "server-only";

import { authMode, type AuthMode } from "@/lib/auth/mode";

/** What the browser needs to know, read from the server's environment at request time. */
export type PublicConfig = {
  /** The gateway's base URL as the browser reaches it; "" means this origin (production). */
  apiUrl: string;
  authMode: AuthMode;
  clerkPublishableKey: string | null;
};

export function publicConfig(env: NodeJS.ProcessEnv = process.env): PublicConfig {
  return {
    apiUrl: (env.VISIONA_API_URL ?? "").replace(/\/+$/, ""),
    authMode: authMode(env),
    clerkPublishableKey: env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY ?? env.CLERK_PUBLISHABLE_KEY ?? null,
  };
}
