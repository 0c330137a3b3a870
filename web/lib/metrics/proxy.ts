import { observeRequest, webMetrics } from "@/lib/metrics/registry";
import { proxyAnswerLabels } from "@/lib/metrics/requests";

/**
 * Count the proxy's own answer (proxy.ts), begun at ``startedMs`` (performance.now()): Next.js
 * traces no request of its own for it (lib/metrics/requests.ts). A request let through is
 * counted by the route that answers it.
 */
export function countProxyAnswer(
  method: string,
  answer: { status: number; headers: Headers } | null | undefined | void,
  startedMs: number,
): void {
  const labels = proxyAnswerLabels(method, answer);
  if (labels) observeRequest(webMetrics(), labels, (performance.now() - startedMs) / 1000);
}
