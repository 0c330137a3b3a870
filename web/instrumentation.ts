/**
 * Runs once when the server starts: dev sign-in refuses a public or live-keyed deployment,
 * then the process's metrics start (lib/metrics: served at /metrics).
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { refuseUnsafeDevAuth } = await import("@/lib/auth/startup");
  refuseUnsafeDevAuth(process.env);
  const { startMetrics } = await import("@/lib/metrics/server");
  startMetrics();
}
