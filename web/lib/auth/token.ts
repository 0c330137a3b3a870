/** Reading a session token in the browser: the cookie and the JWT's expiry (no verification). */

export function readCookie(name: string, cookie: string = document.cookie): string | null {
  for (const part of cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

type Claims = { sub?: string; exp?: number; iat?: number };

export function tokenClaims(token: string): Claims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(json) as Claims;
  } catch {
    return null;
  }
}

/** Seconds until the token expires (negative once expired); null when it cannot be read. */
export function secondsLeft(token: string, nowMs: number = Date.now()): number | null {
  const exp = tokenClaims(token)?.exp;
  return typeof exp === "number" ? exp - nowMs / 1000 : null;
}
