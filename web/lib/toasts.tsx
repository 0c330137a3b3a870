"use client";

import { toast } from "react-toastify";

import { describeError } from "@/lib/api/client";
import type { Audience } from "@/lib/problems";

/** A toast for a failed request: the human message and the code (for support), never raw JSON. */
export function toastProblem(error: unknown, audience: Audience = "user"): void {
  const human = describeError(error, audience);
  toast.error(
    <div>
      <p className="font-semibold">{human.title}</p>
      <p className="text-sm">{human.message}</p>
      <p className="mt-1 font-mono text-xs opacity-80">{human.code}</p>
    </div>,
    // One toast per kind of problem: a burst of failures does not stack up.
    { toastId: `problem-${human.code}` },
  );
}
