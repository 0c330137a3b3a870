"use client";

import { Hourglass, MailWarning, Send, Users } from "lucide-react";
import { notFound, usePathname, useRouter, useSearchParams } from "next/navigation";

import { sectionOf, type Section } from "@/components/admin/admin-words";
import { DeadLetters } from "@/components/admin/dead-letters";
import { Outbox } from "@/components/admin/outbox";
import { StuckJobs } from "@/components/admin/stuck-jobs";
import { UserLookup } from "@/components/admin/user-lookup";
import { useMe } from "@/components/account/use-account";
import { PageHeader } from "@/components/app/page-header";
import { ProblemAudience, ProblemNotice } from "@/components/app/problem-notice";
import { Skeleton } from "@/components/ui/skeleton";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";

const TABS: { id: Section; label: string; icon: typeof Users }[] = [
  { id: "jobs", label: "Stuck jobs", icon: Hourglass },
  { id: "users", label: "Users", icon: Users },
  { id: "dead-letters", label: "Dead letters", icon: MailWarning },
  { id: "outbox", label: "Outbox", icon: Send },
];

/** The sections, the one shown kept in the URL (`?section=`): a reload or a shared link keeps it. */
function Sections() {
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const section = sectionOf(params.get("section"));
  return (
    <Tabs value={section} onValueChange={(next) => router.replace(`${pathname}?section=${next}`, { scroll: false })}>
      <TabsList aria-label="Operations" className="w-full sm:w-fit">
        {TABS.map((tab) => (
          <TabsTrigger key={tab.id} value={tab.id} className="flex-1 sm:flex-none">
            <tab.icon aria-hidden className="hidden sm:block" />
            {tab.label}
          </TabsTrigger>
        ))}
      </TabsList>
      <TabsContent value="jobs">
        <StuckJobs />
      </TabsContent>
      <TabsContent value="users">
        <UserLookup />
      </TabsContent>
      <TabsContent value="dead-letters">
        <DeadLetters />
      </TabsContent>
      <TabsContent value="outbox">
        <Outbox />
      </TabsContent>
    </Tabs>
  );
}

/**
 * The operator console: for operators only (`GET /v1/me` says who is one). Anyone else gets the
 * app's not-found page, as the gateway answers them 404 on every admin route.
 */
export function AdminConsole() {
  const me = useMe();
  if (me.isPending) {
    return (
      <div className="flex flex-col gap-4" aria-busy="true" aria-label="Loading">
        <Skeleton className="h-9 w-48" />
        <Skeleton className="h-10 w-full max-w-md" />
        <Skeleton className="h-48" />
      </div>
    );
  }
  if (me.isError) return <ProblemNotice error={me.error} onRetry={() => void me.refetch()} />;
  if (!me.data.operator) notFound();
  return (
    <ProblemAudience.Provider value="operator">
      <PageHeader title="Operations" description="Support's tools across users. Every action needs a reason and is recorded in the audit log." />
      <Sections />
    </ProblemAudience.Provider>
  );
}
