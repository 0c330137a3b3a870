import { webMetrics } from "@/lib/metrics/registry";

// Prometheus's scrape (deploy/k8s: the pods' annotations, the PodMonitor): this process's
// metrics (lib/metrics/registry.ts), read at each request, never prerendered nor cached. The
// proxy does not run here (proxy.ts's matcher), so a scrape needs no session and no loopback
// Host; the prod Ingress refuses /metrics to the outside (deploy/k8s/overlays/prod/ingress.yaml).
export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export async function GET(): Promise<Response> {
  const { registry } = webMetrics();
  return new Response(await registry.metrics(), {
    headers: { "content-type": registry.contentType, "cache-control": "no-store" },
  });
}
