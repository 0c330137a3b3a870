"use client";

import type { InfiniteData, UseInfiniteQueryResult } from "@tanstack/react-query";
import Link from "next/link";
import type { ReactNode } from "react";

import { failureWords, formatAge, secondsSince, stepWords } from "@/components/admin/admin-words";
import { FailJob, RetryJob } from "@/components/admin/job-actions";
import type { AdminJob, ListPage } from "@/components/admin/use-admin";
import { PagedHistory } from "@/components/app/paged-history";
import { StatusBadge } from "@/components/app/status-badge";
import { TableCell, TableRow } from "@/components/ui/table";
import { formatDate } from "@/lib/format";

const ENDED = new Set(["succeeded", "failed", "canceled"]);

function JobId({ job }: { job: AdminJob }) {
  return (
    <span className="font-mono text-xs" title={job.id}>
      {job.id.slice(0, 8)}
    </span>
  );
}

function Owner({ userId }: { userId: string }) {
  return (
    <Link
      href={`/admin?section=users&user=${encodeURIComponent(userId)}`}
      className="font-mono text-xs text-accent underline-offset-4 hover:underline"
      title={`Look up ${userId}`}
    >
      {userId}
    </Link>
  );
}

function Status({ job }: { job: AdminJob }) {
  return <StatusBadge kind={job.kind === "training" ? "model" : "generation"} status={job.status} />;
}

/** The next step, its attempts so far, and whether a worker holds it now. */
function Step({ job }: { job: AdminJob }) {
  const step = stepWords(job.work);
  if (!step) return <span className="text-muted-foreground">{ENDED.has(job.status) ? "—" : "Waiting (no step due)"}</span>;
  const notes = [job.work_attempts ? `${job.work_attempts} attempt${job.work_attempts === 1 ? "" : "s"}` : null, job.leased ? "running now" : null].filter(Boolean);
  return (
    <span>
      {step}
      {notes.length ? <span className="block text-xs text-muted-foreground">{notes.join(" · ")}</span> : null}
    </span>
  );
}

function Failure({ job }: { job: AdminJob }) {
  const words = failureWords(job.failure_reason);
  return words ? <span title={job.failure_reason ?? undefined}>{words}</span> : <span className="text-muted-foreground">—</span>;
}

function Actions({ job }: { job: AdminJob }) {
  if (ENDED.has(job.status)) return null;
  return (
    <div className="flex flex-wrap gap-2">
      <RetryJob job={job} />
      <FailJob job={job} />
    </div>
  );
}

function Age({ job }: { job: AdminJob }) {
  return (
    <time dateTime={job.created_at} title={formatDate(job.created_at)}>
      {formatAge(secondsSince(job.created_at))}
    </time>
  );
}

type JobQuery = UseInfiniteQueryResult<InfiniteData<ListPage<AdminJob>>>;

/**
 * Paid jobs as an operator sees them (states, steps, owners: never their content), with Retry
 * and Fail on those not ended. `showOwner` for lists across users.
 */
export function JobList({ query, label, empty, showOwner = false }: { query: JobQuery; label: string; empty: ReactNode; showOwner?: boolean }) {
  const columns = [
    { label: "Job" },
    ...(showOwner ? [{ label: "Owner" }] : []),
    { label: "Status" },
    { label: "Next step" },
    { label: "Age" },
    { label: "Failure" },
    { label: "Actions", className: "sr-only" },
  ];
  return (
    <PagedHistory
      query={query}
      label={label}
      loadingLabel={`Loading ${label.toLowerCase()}`}
      skeletons={3}
      empty={empty}
      columns={columns}
      row={(job) => (
        <TableRow key={job.id} data-job-id={job.id} data-job-status={job.status}>
          <TableCell className="align-top">
            <JobId job={job} />
          </TableCell>
          {showOwner ? (
            <TableCell className="align-top">
              <Owner userId={job.user_id} />
            </TableCell>
          ) : null}
          <TableCell className="align-top">
            <Status job={job} />
          </TableCell>
          <TableCell className="min-w-40 align-top whitespace-normal">
            <Step job={job} />
          </TableCell>
          <TableCell className="align-top tabular-nums">
            <Age job={job} />
          </TableCell>
          <TableCell className="min-w-32 align-top whitespace-normal">
            <Failure job={job} />
          </TableCell>
          <TableCell className="align-top">
            <Actions job={job} />
          </TableCell>
        </TableRow>
      )}
      item={(job) => (
        <li key={job.id} className="flex flex-col gap-2 p-3" data-job-id={job.id} data-job-status={job.status}>
          <div className="flex items-center justify-between gap-2">
            <JobId job={job} />
            <Status job={job} />
          </div>
          {showOwner ? (
            <p className="text-sm text-muted-foreground">
              Owner <Owner userId={job.user_id} />
            </p>
          ) : null}
          {job.work || !ENDED.has(job.status) ? (
            <div className="text-sm">
              <Step job={job} />
            </div>
          ) : null}
          <p className="text-sm text-muted-foreground">
            Created <Age job={job} /> ago
            {job.failure_reason ? (
              <>
                {" "}
                · <Failure job={job} />
              </>
            ) : null}
          </p>
          <Actions job={job} />
        </li>
      )}
    />
  );
}
