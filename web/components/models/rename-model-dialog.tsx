"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Loader2, Pencil } from "lucide-react";
import { useState, type FormEvent } from "react";

import { ProblemNotice } from "@/components/app/problem-notice";
import { nameProblem, NAME_MAX } from "@/components/training/train-form";
import { modelQueryKey } from "@/components/training/training-progress";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";

/** Rename a model (PATCH /v1/models/{id}), checked in words before it is sent. */
export function RenameModelDialog({ model }: { model: Schemas["Model"] }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(model.name);
  const [shown, setShown] = useState<string | null>(null);

  const rename = useMutation({
    mutationFn: async (next: string) =>
      dataOf(await api.PATCH("/v1/models/{model_id}", { params: { path: { model_id: model.id } }, body: { name: next } })),
    onSuccess: (updated) => {
      queryClient.setQueryData(modelQueryKey(model.id), updated);
      void queryClient.invalidateQueries({ queryKey: ["models"] });
      setOpen(false);
    },
  });

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const problem = nameProblem(name);
    setShown(problem);
    if (problem) return;
    if (name.trim() === model.name) {
      setOpen(false);
      return;
    }
    rename.mutate(name.trim());
  };

  const inputId = `rename-${model.id}`;
  return (
    <Dialog
      open={open}
      onOpenChange={(next) => {
        if (rename.isPending) return;
        setOpen(next);
        if (next) {
          setName(model.name);
          setShown(null);
          rename.reset();
        }
      }}
    >
      <DialogTrigger asChild>
        <Button variant="outline" size="sm" aria-label={`Rename ${model.name}`}>
          <Pencil aria-hidden /> Rename
        </Button>
      </DialogTrigger>
      <DialogContent>
        <form onSubmit={submit} noValidate className="flex flex-col gap-4">
          <DialogHeader>
            <DialogTitle>Rename model</DialogTitle>
            <DialogDescription>Only the name changes; the model and its trigger word stay the same.</DialogDescription>
          </DialogHeader>
          <div className="flex flex-col gap-2">
            <Label htmlFor={inputId}>New name</Label>
            <Input
              id={inputId}
              value={name}
              maxLength={NAME_MAX + 20}
              onChange={(event) => {
                setName(event.target.value);
                if (shown) setShown(nameProblem(event.target.value));
              }}
              aria-invalid={shown ? true : undefined}
              aria-describedby={shown ? `${inputId}-problem` : undefined}
              autoFocus
            />
            {shown ? (
              <p id={`${inputId}-problem`} className="text-sm text-destructive">
                {shown}
              </p>
            ) : (
              <p className="text-xs text-muted-foreground">1 to {NAME_MAX} characters.</p>
            )}
          </div>
          {rename.isError ? <ProblemNotice error={rename.error} /> : null}
          <DialogFooter>
            <Button type="button" variant="outline" onClick={() => setOpen(false)} disabled={rename.isPending}>
              Cancel
            </Button>
            <Button type="submit" disabled={rename.isPending}>
              {rename.isPending ? <Loader2 aria-hidden className="animate-spin" /> : null}
              Save name
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
