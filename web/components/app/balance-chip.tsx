"use client";

import { useQuery } from "@tanstack/react-query";
import { Coins } from "lucide-react";
import Link from "next/link";

import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi } from "@/lib/api/client";

export function useBalance() {
  const api = useApi();
  return useQuery({
    queryKey: ["balance"],
    queryFn: async () => dataOf(await api.GET("/v1/billing/balance")),
  });
}

export function BalanceChip() {
  const balance = useBalance();
  if (balance.isPending) return <Skeleton className="h-8 w-28" />;
  if (balance.isError) return null;
  return (
    <Link
      href="/billing"
      className="flex items-center gap-2 rounded-full border px-3 py-1.5 text-sm hover:bg-secondary"
      aria-label={`${balance.data.available} credits available${balance.data.held ? `, ${balance.data.held} held` : ""}. Open billing.`}
    >
      <Coins aria-hidden className="size-4 text-warning" />
      <span className="font-semibold tabular-nums">{balance.data.available}</span>{" "}
      <span className="text-muted-foreground">credits</span>
      {balance.data.held ? <span className="text-muted-foreground">· {balance.data.held} held</span> : null}
    </Link>
  );
}
