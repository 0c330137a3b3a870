"use client";

import { Loader2 } from "lucide-react";
import { useId, useState, type ReactNode } from "react";

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
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";

/** A phrase the person types, word for word, before the action is enabled. */
export type TypedPhrase = {
  phrase: string;
  matches: (typed: string) => boolean;
  /** What to say about what was typed so far (the field's live hint). */
  hint: (typed: string) => string;
};

/**
 * A destructive action behind a confirmation that says exactly what happens. The dialog stays
 * open while the request runs and shows its problem in place if it fails; it closes on success.
 * With `typedPhrase`, the action waits for the phrase to be typed.
 */
export function ConfirmActionDialog({
  trigger,
  title,
  children,
  details,
  typedPhrase,
  confirmLabel,
  confirmIcon,
  pendingLabel,
  cancelLabel = "Keep it",
  onConfirm,
}: {
  trigger: ReactNode;
  title: string;
  /** What happens, said exactly: the dialog's description. */
  children: ReactNode;
  /** More to read before deciding, under the description. */
  details?: ReactNode;
  typedPhrase?: TypedPhrase;
  confirmLabel: string;
  /** Shown before the confirm label while nothing runs (a spinner takes its place meanwhile). */
  confirmIcon?: ReactNode;
  pendingLabel: string;
  cancelLabel?: string;
  onConfirm: () => Promise<unknown>;
}) {
  const [open, setOpen] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [typed, setTyped] = useState("");
  const ready = !typedPhrase || typedPhrase.matches(typed);

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
            onConfirm()
              .then(() => setOpen(false))
              .catch((caught: unknown) => setError(caught))
              .finally(() => setPending(false));
          }}
        >
          {typedPhrase ? <PhraseField typedPhrase={typedPhrase} typed={typed} onType={setTyped} disabled={pending} /> : null}
          <AlertDialogFooter>
            <AlertDialogCancel type="button" disabled={pending}>
              {cancelLabel}
            </AlertDialogCancel>
            {/* A plain submit button, not AlertDialogAction: the dialog stays open until the action is done. */}
            <Button type="submit" variant="destructive" disabled={!ready || pending}>
              {pending ? <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> : confirmIcon}
              {pending ? pendingLabel : confirmLabel}
            </Button>
          </AlertDialogFooter>
        </form>
      </AlertDialogContent>
    </AlertDialog>
  );
}

function PhraseField({
  typedPhrase,
  typed,
  onType,
  disabled,
}: {
  typedPhrase: TypedPhrase;
  typed: string;
  onType: (typed: string) => void;
  disabled: boolean;
}) {
  const inputId = useId();
  const hintId = useId();
  const { phrase } = typedPhrase;
  // Wrong only once it can no longer become the phrase.
  const wrong = typed.trim() !== "" && !typedPhrase.matches(typed) && !phrase.startsWith(typed.trim().toLowerCase());
  return (
    <div className="flex flex-col gap-2">
      <Label htmlFor={inputId}>
        Type <span className="font-mono font-semibold">{phrase}</span> to confirm
      </Label>
      <Input
        id={inputId}
        value={typed}
        onChange={(event) => onType(event.target.value)}
        autoComplete="off"
        autoCapitalize="off"
        autoCorrect="off"
        spellCheck={false}
        aria-describedby={hintId}
        aria-invalid={wrong ? true : undefined}
        disabled={disabled}
      />
      <p id={hintId} className="text-sm text-muted-foreground" aria-live="polite">
        {typedPhrase.hint(typed)}
      </p>
    </div>
  );
}
