"use client";

import { CircleCheck, RefreshCw } from "lucide-react";
import { useState } from "react";

import { formatAge } from "@/components/admin/admin-words";
import { JobList } from "@/components/admin/job-list";
import { useStuckJobs, type ListedKind } from "@/components/admin/use-admin";
import { EmptyState } from "@/components/app/empty-state";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";

const KINDS: { value: ListedKind; label: string; plural: string }[] = [
  { value: "generation", label: "Generations", plural: "generations" },
  { value: "training", label: "Trainings", plural: "trainings" },
  { value: "generation_ingest", label: "Generations copying their images", plural: "generations copying their images" },
];

/** Minimum ages to pick from (seconds); the gateway's default is 10 minutes. */
const AGES = [0, 5 * 60, 10 * 60, 30 * 60, 3600, 6 * 3600, 24 * 3600];
const DEFAULT_AGE = 10 * 60;

function ageLabel(seconds: number): string {
  return seconds === 0 ? "Any age" : formatAge(seconds);
}

/** Jobs of every user that have not ended and are older than an age: retry or fail each. */
export function StuckJobs() {
  const [kind, setKind] = useState<ListedKind>("generation");
  const [olderThan, setOlderThan] = useState(DEFAULT_AGE);
  const jobs = useStuckJobs(kind, olderThan);
  const plural = KINDS.find((k) => k.value === kind)?.plural ?? "jobs";

  return (
    <section aria-labelledby="stuck-jobs-title" className="flex flex-col gap-4">
      <div>
        <h2 id="stuck-jobs-title" className="text-lg font-semibold">
          Stuck jobs
        </h2>
        <p className="text-sm text-muted-foreground">
          Paid jobs of every user that have not ended, newest first. Retry puts one back to work; Fail ends it and releases the credits it holds.
        </p>
      </div>
      <div className="flex flex-wrap items-end gap-3">
        <div className="flex w-full flex-col gap-2 sm:w-72">
          <Label htmlFor="stuck-kind">Kind</Label>
          <Select value={kind} onValueChange={(value) => setKind(value as ListedKind)}>
            <SelectTrigger id="stuck-kind">
              <SelectValue />
            </SelectTrigger>
            <SelectContent>
              {KINDS.map((k) => (
                <SelectItem key={k.value} value={k.value}>
                  {k.label}
                </SelectItem>
              ))}
            </SelectContent>
          </Select>
        </div>
        <div className="flex w-full flex-col gap-2 sm:w-44">
          <Label htmlFor="stuck-age">Older than</Label>
          <Select value={String(olderThan)} onValueChange={(value) => setOlderThan(Number(value))}>
            <SelectTrigger id="stuck-age">
              <SelectValue />
            </SelectTrigger>
            <SelectContent>
              {AGES.map((seconds) => (
                <SelectItem key={seconds} value={String(seconds)}>
                  {ageLabel(seconds)}
                </SelectItem>
              ))}
            </SelectContent>
          </Select>
        </div>
        <Button variant="outline" onClick={() => void jobs.refetch()} disabled={jobs.isFetching}>
          <RefreshCw aria-hidden className={jobs.isFetching ? "animate-spin motion-reduce:animate-none" : undefined} /> Refresh
        </Button>
      </div>
      <JobList
        query={jobs}
        label={`Stuck ${plural}, newest first`}
        showOwner
        empty={
          <EmptyState icon={CircleCheck} title="Nothing stuck">
            No {plural} {olderThan ? `older than ${formatAge(olderThan)} ` : ""}are still running.
            {olderThan ? " Pick a smaller age to see younger ones." : null}
          </EmptyState>
        }
      />
    </section>
  );
}
