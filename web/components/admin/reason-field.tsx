"use client";

import { useId } from "react";

import { reasonProblem, REASON_MAX } from "@/components/admin/admin-words";
import type { TypedConfirmation } from "@/components/app/confirm-action-dialog";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";

/** Why the operator acts: required before the action is enabled, kept in the audit log. */
function ReasonInput({ typed, onType, disabled }: { typed: string; onType: (typed: string) => void; disabled: boolean }) {
  const inputId = useId();
  const hintId = useId();
  const problem = typed.trim() ? reasonProblem(typed) : null;
  return (
    <div className="flex flex-col gap-2">
      <Label htmlFor={inputId}>Reason</Label>
      <Textarea
        id={inputId}
        name="reason"
        value={typed}
        onChange={(event) => onType(event.target.value)}
        placeholder="Ticket 1234: the user reports…"
        rows={2}
        maxLength={REASON_MAX + 50}
        aria-describedby={hintId}
        aria-invalid={problem ? true : undefined}
        disabled={disabled}
        required
        autoFocus
      />
      <p id={hintId} className={problem ? "text-sm text-destructive" : "text-sm text-muted-foreground"}>
        {problem ?? "Required. Recorded in the audit log, which the user can read too."}
      </p>
    </div>
  );
}

/** The reason as ConfirmActionDialog's typed confirmation: the action waits for one. */
export const REASON_CONFIRMATION: TypedConfirmation = { Field: ReasonInput, matches: (typed) => reasonProblem(typed) === null };
