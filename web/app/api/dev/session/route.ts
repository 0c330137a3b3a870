import { cookies } from "next/headers";
import { NextResponse, type NextRequest } from "next/server";

import { devRequestRefusal } from "@/lib/auth/mode";
import {
  DEV_OPERATOR_ROLE,
  mintSessionToken,
  SESSION_COOKIE,
  sessionOf,
  USER_NAME,
  type DevSession,
} from "@/lib/auth/dev-issuer";

// Dev sign-in: POST {user, operator?} signs in (as an operator: with the operator role), PUT
// renews the current session (same user, same role), DELETE signs out.
// Answers only in dev mode, on a loopback host (lib/auth/mode.ts).

function refused(request: NextRequest): NextResponse | null {
  const refusal =
    process.env.VISIONA_AUTH_MODE === "dev"
      ? devRequestRefusal(process.env, request.headers.get("host"))
      : "dev sign-in is off (VISIONA_AUTH_MODE is not dev)";
  return refusal ? NextResponse.json({ code: "dev_auth_refused", detail: refusal }, { status: 403 }) : null;
}

async function signedIn(request: NextRequest, session: DevSession): Promise<NextResponse> {
  let token: string;
  try {
    token = await mintSessionToken(process.env, session, request.nextUrl.origin);
  } catch {
    return NextResponse.json(
      { code: "dev_issuer_unreachable", detail: "The local sign-in service is not answering. Is `make up` running?" },
      { status: 503 },
    );
  }
  const jar = await cookies();
  jar.set(SESSION_COOKIE, token, {
    path: "/",
    sameSite: "lax",
    secure: request.nextUrl.protocol === "https:",
    // Readable by the page, as Clerk's own __session cookie is: the page sends it as a Bearer token.
    httpOnly: false,
    maxAge: 7 * 24 * 3600,
  });
  return NextResponse.json({ user: session.user, token });
}

export async function POST(request: NextRequest): Promise<NextResponse> {
  const refusal = refused(request);
  if (refusal) return refusal;
  const body = (await request.json().catch(() => null)) as { user?: unknown; operator?: unknown } | null;
  const user = typeof body?.user === "string" ? body.user.trim() : "";
  if (!USER_NAME.test(user)) {
    return NextResponse.json(
      { code: "invalid_user_name", detail: "Use 1–64 letters, digits, '-' or '_'." },
      { status: 422 },
    );
  }
  return signedIn(request, { user, role: body?.operator === true ? DEV_OPERATOR_ROLE : null });
}

export async function PUT(request: NextRequest): Promise<NextResponse> {
  const refusal = refused(request);
  if (refusal) return refusal;
  const token = (await cookies()).get(SESSION_COOKIE)?.value;
  const session = token ? await sessionOf(process.env, token) : null;
  if (!session) {
    return NextResponse.json({ code: "not_signed_in", detail: "Sign in again." }, { status: 401 });
  }
  return signedIn(request, session);
}

export async function DELETE(request: NextRequest): Promise<NextResponse> {
  const refusal = refused(request);
  if (refusal) return refusal;
  (await cookies()).delete(SESSION_COOKIE);
  return new NextResponse(null, { status: 204 });
}
