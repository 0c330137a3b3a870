import "server-only";

import { createRemoteJWKSet, jwtVerify } from "jose";

/** The name Clerk gives its session cookie, which the gateway reads too. */
export const SESSION_COOKIE = "__session";
export const USER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * The role a dev sign-in "as an operator" carries at `metadata.role`, as Clerk's session token
 * template puts a user's public metadata there: an operator to a gateway whose
 * GATEWAY_OPERATOR_ROLE is this (`make up` and the test stack set it).
 */
export const DEV_OPERATOR_ROLE = "operator";

/** Who a dev session token names: the user, and the role it carries, if any. */
export type DevSession = { user: string; role: string | null };

type Env = Readonly<Record<string, string | undefined>>;

function issuerUrl(env: Env): string {
  const url = env.VISIONA_DEV_ISSUER_URL;
  if (!url) throw new Error("VISIONA_DEV_ISSUER_URL is not set (the local dev issuer's URL)");
  return url.replace(/\/+$/, "");
}

export function tokenTtlSeconds(env: Env): number {
  const ttl = Number(env.VISIONA_DEV_TOKEN_TTL_S ?? "600");
  return Number.isFinite(ttl) && ttl >= 5 ? Math.floor(ttl) : 600;
}

/** A real RS256 session token for the session's user (and role), signed by the dev issuer, for this web origin. */
export async function mintSessionToken(env: Env, { user, role }: DevSession, origin: string): Promise<string> {
  const response = await fetch(`${issuerUrl(env)}/_dev/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, azp: env.VISIONA_WEB_URL ?? origin, ttl_s: tokenTtlSeconds(env), ...(role ? { role } : {}) }),
    cache: "no-store",
  });
  if (!response.ok) throw new Error(`the dev issuer answered ${response.status}`);
  const body = (await response.json()) as { token?: string };
  if (!body.token) throw new Error("the dev issuer answered without a token");
  return body.token;
}

let jwks: { url: string; keys: ReturnType<typeof createRemoteJWKSet> } | null = null;

function roleOf(metadata: unknown): string | null {
  if (!metadata || typeof metadata !== "object") return null;
  const role = (metadata as { role?: unknown }).role;
  return typeof role === "string" ? role : null;
}

/**
 * The user (and role) of a session token this issuer signed, even an expired one (up to a week
 * old): a refresh renews the session of the person who signed in, never a name or a role the
 * browser picks.
 */
export async function sessionOf(env: Env, token: string): Promise<DevSession | null> {
  const url = `${issuerUrl(env)}/.well-known/jwks.json`;
  if (jwks?.url !== url) jwks = { url, keys: createRemoteJWKSet(new URL(url)) };
  try {
    const { payload } = await jwtVerify(token, jwks.keys, { clockTolerance: 7 * 24 * 3600 });
    return typeof payload.sub === "string" ? { user: payload.sub, role: roleOf(payload.metadata) } : null;
  } catch {
    return null;
  }
}
