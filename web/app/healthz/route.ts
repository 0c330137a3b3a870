// Liveness and readiness of the web server alone (the image's and the pods' probes): it
// reads nothing and calls no one, so a gateway or Clerk outage never restarts the web app.
export const dynamic = "force-dynamic";

export function GET(): Response {
  return Response.json({ status: "ok" }, { headers: { "cache-control": "no-store" } });
}
