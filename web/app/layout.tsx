import { GeistMono } from "geist/font/mono";
import { GeistSans } from "geist/font/sans";
import type { Metadata, Viewport } from "next";
import { cookies } from "next/headers";
import { connection } from "next/server";
import type { ReactNode } from "react";
import "react-toastify/dist/ReactToastify.css";

import { Providers } from "@/components/app/providers";
import { publicConfig } from "@/lib/config";

import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Visiona — your personal AI photo studio", template: "%s · Visiona" },
  description: "Train a personal AI model on 10–30 of your photos, then create new images of yourself from a sentence.",
};

export const viewport: Viewport = { themeColor: "#15131f", colorScheme: "dark" };

export default async function RootLayout({ children }: { children: ReactNode }) {
  // The settings come from this server's environment on every request, not from the build.
  await connection();
  const config = publicConfig();
  // Dev mode: the session cookie as the server saw it, so the first client render matches.
  const initialToken = config.authMode === "dev" ? ((await cookies()).get("__session")?.value ?? null) : null;
  return (
    <html lang="en" className={`dark ${GeistSans.variable} ${GeistMono.variable}`}>
      <body className="min-h-dvh font-sans">
        <Providers apiUrl={config.apiUrl} authMode={config.authMode} clerkPublishableKey={config.clerkPublishableKey} initialToken={initialToken}>
          {children}
        </Providers>
      </body>
    </html>
  );
}
