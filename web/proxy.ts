import { clerkMiddleware, createRouteMatcher } from "@clerk/nextjs/server";
import { NextResponse, type NextFetchEvent, type NextRequest } from "next/server";

import { authMode, devRequestRefusal } from "@/lib/auth/mode";
import { APP_ROUTES } from "@/lib/auth/routes";
import { countProxyAnswer } from "@/lib/metrics/proxy";

const isAppRoute = createRouteMatcher(APP_ROUTES.map((route) => `${route}(.*)`));

const clerk = clerkMiddleware(async (auth, request) => {
  if (isAppRoute(request)) await auth.protect();
});

function devProxy(request: NextRequest): NextResponse {
  const refusal = devRequestRefusal(process.env, request.headers.get("host"));
  if (refusal) return new NextResponse(refusal, { status: 403, headers: { "content-type": "text/plain" } });
  if (isAppRoute(request) && !request.cookies.get("__session")?.value) {
    const signIn = new URL("/sign-in", request.url);
    signIn.searchParams.set("redirect_url", request.nextUrl.pathname + request.nextUrl.search);
    return NextResponse.redirect(signIn);
  }
  return NextResponse.next();
}

export default async function proxy(request: NextRequest, event: NextFetchEvent) {
  const started = performance.now();
  const answer = authMode(process.env) === "dev" ? devProxy(request) : await clerk(request, event);
  countProxyAnswer(request.method, answer, started);
  return answer;
}

export const config = {
  matcher: [
    // Pages and route handlers, not Next's own files, static assets, the probes' /healthz nor
    // Prometheus's /metrics (which must answer a scrape by the pod's address, no session).
    "/((?!_next|healthz|metrics$|[^?]*\\.(?:html?|css|js(?!on)|jpe?g|webp|png|gif|svg|ttf|woff2?|ico|csv|docx?|xlsx?|zip|webmanifest)).*)",
    "/(api|trpc)(.*)",
  ],
};
