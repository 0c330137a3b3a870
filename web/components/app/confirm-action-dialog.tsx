"use client";

import { Loader2 } from "lucide-react";
import { useState, type ComponentType, type ReactNode } from "react";

import { ProblemNotice } from "@/components/app/problem-notice";
import {
  AlertDialog,
  AlertDialogCancel,
  AlertDialogContent,
  AlertDialogDescription,
  AlertDialogFooter,
  AlertDialogHeader,
  AlertDialogTitle,
  AlertDialogTrigger,
} from "@/components/ui/alert-dialog";
import { Button } from "@/components/ui/button";

/** Something the person types before the action is enabled: the field, and when it is right. */
export type TypedConfirmation = {
  Field: ComponentType<{ typed: string; onType: (typed: string) => void; disabled: boolean }>;
  matches: (typed: string) => boolean;
};

/**
 * An action behind a confirmation that says exactly what happens (destructive unless
 * `confirmVariant` says otherwise). The dialog stays open while the request runs and shows its
 * problem in place if it fails; it closes on success. With `typedConfirmation`, the action
 * waits until what is typed matches, and is handed what was typed (a reason, say).
 */
export function ConfirmActionDialog({
  trigger,
  title,
  children,
  details,
  typedConfirmation,
  confirmLabel,
  confirmIcon,
  pendingLabel,
  cancelLabel = "Keep it",
  confirmVariant = "destructive",
  onConfirm,
}: {
  trigger: ReactNode;
  title: string;
  /** What happens, said exactly: the dialog's description. */
  children: ReactNode;
  /** More to read before deciding, under the description. */
  details?: ReactNode;
  typedConfirmation?: TypedConfirmation;
  confirmLabel: string;
  /** Shown before the confirm label while nothing runs (a spinner takes its place meanwhile). */
  confirmIcon?: ReactNode;
  pendingLabel: string;
  cancelLabel?: string;
  confirmVariant?: "destructive" | "default";
  onConfirm: (typed: string) => Promise<unknown>;
}) {
  const [open, setOpen] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [typed, setTyped] = useState("");
  const ready = !typedConfirmation || typedConfirmation.matches(typed);

  return (
    <AlertDialog
      open={open}
      onOpenChange={(next) => {
        if (pending) return;
        setOpen(next);
        if (next) {
          setError(null);
          setTyped("");
        }
      }}
    >
      <AlertDialogTrigger asChild>{trigger}</AlertDialogTrigger>
      <AlertDialogContent className="max-h-[calc(100dvh-2rem)] overflow-y-auto">
        <AlertDialogHeader>
          <AlertDialogTitle>{title}</AlertDialogTitle>
          <AlertDialogDescription asChild>
            <div className="flex flex-col gap-2 text-left text-sm text-muted-foreground">{children}</div>
          </AlertDialogDescription>
        </AlertDialogHeader>
        {details}
        {error ? <ProblemNotice error={error} /> : null}
        <form
          className="flex flex-col gap-4"
          onSubmit={(event) => {
            event.preventDefault();
            if (!ready || pending) return;
            setPending(true);
            setError(null);
            onConfirm(typed)
              .then(() => setOpen(false))
              .catch((caught: unknown) => setError(caught))
              .finally(() => setPending(false));
          }}
        >
          {typedConfirmation ? <typedConfirmation.Field typed={typed} onType={setTyped} disabled={pending} /> : null}
          <AlertDialogFooter>
            <AlertDialogCancel type="button" disabled={pending}>
              {cancelLabel}
            </AlertDialogCancel>
            {/* A plain submit button, not AlertDialogAction: the dialog stays open until the action is done. */}
            <Button type="submit" variant={confirmVariant} disabled={!ready || pending}>
              {pending ? <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> : confirmIcon}
              {pending ? pendingLabel : confirmLabel}
            </Button>
          </AlertDialogFooter>
        </form>
      </AlertDialogContent>
    </AlertDialog>
  );
}
