import { SignIn } from "@clerk/nextjs";
import type { Metadata } from "next";

import { DevSignIn } from "@/components/app/dev-sign-in";
import { Logo } from "@/components/marketing/logo";
import { authMode } from "@/lib/auth/mode";

export const metadata: Metadata = { title: "Sign in" };

function safeRedirect(value: string | string[] | undefined): string {
  const target = Array.isArray(value) ? value[0] : value;
  // Only a path of this site: never an open redirect.
  return target && target.startsWith("/") && !target.startsWith("//") ? target : "/dashboard";
}

export default async function SignInPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const params = await searchParams;
  const redirectTo = safeRedirect(params.redirect_url);
  return (
    <main className="flex min-h-dvh flex-col items-center justify-center gap-8 px-4 py-12">
      <Logo />
      {authMode(process.env) === "dev" ? (
        <DevSignIn redirectTo={redirectTo} />
      ) : (
        <SignIn forceRedirectUrl={redirectTo} signUpForceRedirectUrl={redirectTo} />
      )}
    </main>
  );
}
