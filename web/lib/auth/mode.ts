/**
 * The auth adapter's two modes and the rules that keep dev mode off the public internet.
 *
 * `clerk` (the default): Clerk's hosted sign-in; the Clerk session token goes to the gateway.
 * `dev`: a local sign-in page asks the dev issuer (the Clerk emulator) for a real RS256 session
 * token for a chosen name and keeps it in the `__session` cookie, as Clerk does. Anyone can be
 * anyone in dev mode, so it refuses to run:
 *
 * 1. next to a live Clerk key (`sk_live_…` / `pk_live_…`): that is a production deployment;
 * 2. in a production build (`NODE_ENV=production`) unless the app's public origin
 *    (`VISIONA_WEB_URL`) is a loopback one (localhost, 127.0.0.0/8, [::1]) — `make up` serves
 *    a production build on localhost, a public deployment never is;
 * 3. for a request whose Host is not loopback, whatever the build (checked per request).
 */

export type AuthMode = "clerk" | "dev";

type Env = Readonly<Record<string, string | undefined>>;

export function authMode(env: Env): AuthMode {
  return env.VISIONA_AUTH_MODE?.trim().toLowerCase() === "dev" ? "dev" : "clerk";
}

const LOOPBACK_HOSTS = new Set(["localhost", "[::1]", "::1"]);

/** True for localhost, 127.x.y.z and ::1 (with or without a port). */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/:\d+$/, "");
  if (LOOPBACK_HOSTS.has(name) || name.endsWith(".localhost")) return true;
  return /^127(\.\d{1,3}){3}$/.test(name);
}

function isLoopbackOrigin(origin: string | undefined): boolean {
  if (!origin) return false;
  try {
    return isLoopbackHost(new URL(origin).host);
  } catch {
    return false;
  }
}

/** Why dev mode must not run with this environment, or null when it may (or is not on). */
export function devAuthRefusal(env: Env): string | null {
  if (authMode(env) !== "dev") return null;
  const keys = [env.CLERK_SECRET_KEY, env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY, env.CLERK_PUBLISHABLE_KEY];
  if (keys.some((key) => key?.startsWith("sk_live_") || key?.startsWith("pk_live_"))) {
    return "dev sign-in refuses to run with a live Clerk key: unset VISIONA_AUTH_MODE to use Clerk";
  }
  if (env.NODE_ENV === "production" && !isLoopbackOrigin(env.VISIONA_WEB_URL)) {
    return (
      "dev sign-in runs in a production build only on a loopback origin: set VISIONA_WEB_URL to " +
      "http://localhost:PORT, or unset VISIONA_AUTH_MODE to use Clerk"
    );
  }
  return null;
}

/** Why this request must not be served in dev mode (a public Host), or null. */
export function devRequestRefusal(env: Env, host: string | null): string | null {
  const refusal = devAuthRefusal(env);
  if (refusal || authMode(env) !== "dev") return refusal;
  if (!host || !isLoopbackHost(host)) {
    return "dev sign-in answers only on localhost: this request came for another host";
  }
  return null;
}
