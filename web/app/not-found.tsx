import { Compass } from "lucide-react";
import type { Metadata } from "next";

import { ButtonLink } from "@/components/ui/button-link";

export const metadata: Metadata = { title: "Page not found" };

/**
 * The app's not-found page, in its own colours: for an address that matches nothing, and in
 * place of a page that is not there for this person (the operator console for anyone but an
 * operator), inside the signed-in shell then. No <main> of its own: the shell has one.
 */
export default function NotFound() {
  return (
    <div className="flex min-h-[60dvh] flex-col items-center justify-center gap-4 px-4 py-12 text-center">
      <Compass aria-hidden className="size-10 text-accent" />
      <p className="font-mono text-sm text-muted-foreground">404</p>
      <h1 className="text-2xl font-semibold tracking-tight sm:text-3xl">Page not found</h1>
      <p className="max-w-md text-muted-foreground">There is nothing at this address. The link may be mistyped, or what it pointed to is no longer here.</p>
      <ButtonLink href="/">Back to Visiona</ButtonLink>
    </div>
  );
}
