"use client";

import { AlertTriangle } from "lucide-react";
import Link from "next/link";
import { createContext, useContext } from "react";

import { Button } from "@/components/ui/button";
import { describeError } from "@/lib/api/client";
import type { Audience } from "@/lib/problems";

/** Who reads the problems shown below it (the operator console says "operator"). */
export const ProblemAudience = createContext<Audience>("user");

/** An error in place of what could not load: what happened, in words, and what to do. */
export function ProblemNotice({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const human = describeError(error, useContext(ProblemAudience));
  return (
    <div role="alert" className="flex flex-col gap-3 rounded-xl border border-destructive/50 bg-destructive/10 p-5">
      <p className="flex items-center gap-2 font-semibold">
        <AlertTriangle aria-hidden className="size-5 text-destructive" />
        {human.title}
      </p>
      <p className="text-sm">{human.message}</p>
      <div className="flex flex-wrap items-center gap-3">
        {human.action.kind === "retry" && onRetry ? (
          <Button size="sm" variant="outline" onClick={onRetry}>
            Try again
          </Button>
        ) : null}
        {human.action.kind === "link" ? (
          <Button size="sm" variant="outline" asChild>
            <Link href={human.action.href}>{human.action.label}</Link>
          </Button>
        ) : null}
        {human.action.kind === "sign-in" ? (
          <Button size="sm" asChild>
            <Link href="/sign-in">Sign in</Link>
          </Button>
        ) : null}
        <span className="font-mono text-xs text-muted-foreground">{human.code}</span>
      </div>
    </div>
  );
}
