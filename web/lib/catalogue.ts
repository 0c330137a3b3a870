import "server-only";

import type { components } from "@/lib/api/schema";

export type Catalogue = components["schemas"]["Catalogue"];

/**
 * The price list for the signed-out landing page, read by the server from the gateway
 * (`GET /v1/billing/plans` answers without a session, `current` then being the free tier).
 * Null when the gateway cannot be reached: the page still renders, without prices.
 */
export async function fetchCatalogue(env: NodeJS.ProcessEnv = process.env): Promise<Catalogue | null> {
  const base = (env.VISIONA_GATEWAY_INTERNAL_URL || env.VISIONA_API_URL || "").replace(/\/+$/, "");
  if (!base) return null;
  try {
    const response = await fetch(`${base}/v1/billing/plans`, {
      headers: { accept: "application/json" },
      next: { revalidate: 60 },
      signal: AbortSignal.timeout(2000),
    });
    return response.ok ? ((await response.json()) as Catalogue) : null;
  } catch {
    return null;
  }
}
