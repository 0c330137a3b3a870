import type { NextConfig } from "next";

// Runtime settings (the gateway's URL, the auth mode) are read by the server at request time
// (lib/config.ts), never inlined at build time: one build serves every environment.
const nextConfig: NextConfig = {
  // The container image runs the standalone server (web/Dockerfile); `make up` runs `next start`.
  output: process.env.NEXT_OUTPUT === "standalone" ? "standalone" : undefined,
  poweredByHeader: false,
  // `next dev` would otherwise write an AGENTS.md of its own into web/.
  agentRules: false,
  reactStrictMode: true,
  // Images are presigned S3 URLs that expire: shown as they are, never re-encoded by Next.
  images: { unoptimized: true },
  turbopack: { root: import.meta.dirname },
  outputFileTracingRoot: import.meta.dirname,
};

export default nextConfig;
