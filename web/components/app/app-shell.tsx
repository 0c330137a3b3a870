"use client";

import {
  Camera,
  CreditCard,
  GalleryHorizontalEnd,
  LayoutDashboard,
  LogOut,
  Sparkles,
  UserRound,
  Wand2,
  Boxes,
  Wrench,
} from "lucide-react";
import dynamic from "next/dynamic";
import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";

import { useMe } from "@/components/account/use-account";
import { BalanceChip } from "@/components/app/balance-chip";
import { Logo } from "@/components/marketing/logo";
import { Button } from "@/components/ui/button";
import { useSession } from "@/lib/auth/session";
import { useEventStream } from "@/lib/events/use-event-stream";
import { cn } from "@/lib/utils";

const UserButton = dynamic(() => import("@/components/app/clerk-user-button"), { ssr: false });

export const NAV = [
  { href: "/dashboard", label: "Dashboard", short: "Home", icon: LayoutDashboard },
  { href: "/photos", label: "Photos", icon: Camera },
  { href: "/train", label: "Train", icon: Wand2 },
  { href: "/models", label: "Models", icon: Boxes },
  { href: "/generate", label: "Generate", short: "Create", icon: Sparkles },
  { href: "/gallery", label: "Gallery", icon: GalleryHorizontalEnd },
  { href: "/billing", label: "Billing", icon: CreditCard },
  { href: "/account", label: "Account", icon: UserRound },
] as const;

/** Shown only to operators (`GET /v1/me` says who is one); anyone else's /admin is not found. */
export const OPERATOR_NAV = { href: "/admin", label: "Operations", short: "Ops", icon: Wrench } as const;

function useNav() {
  const me = useMe();
  return me.data?.operator ? [...NAV, OPERATOR_NAV] : NAV;
}

function NavLinks({ compact }: { compact?: boolean }) {
  const pathname = usePathname();
  const nav = useNav();
  return (
    // On a phone all eight (nine for an operator) fit one row (short labels), nothing scrolled out of sight.
    <ul className={cn(compact ? cn("grid gap-0.5 px-1 py-1.5", nav.length > NAV.length ? "grid-cols-9" : "grid-cols-8") : "flex flex-col gap-1")}>
      {nav.map((item) => {
        const active = pathname === item.href || pathname.startsWith(`${item.href}/`);
        return (
          <li key={item.href} className="min-w-0">
            <Link
              href={item.href}
              aria-current={active ? "page" : undefined}
              className={cn(
                "flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium text-muted-foreground transition-colors hover:bg-secondary hover:text-foreground",
                active && "bg-secondary text-foreground",
                compact && "flex-col gap-1 px-0.5 py-1.5 text-[11px] leading-none",
              )}
            >
              <item.icon aria-hidden className="size-4" />
              {compact && "short" in item ? item.short : item.label}
            </Link>
          </li>
        );
      })}
    </ul>
  );
}

function LiveIndicator() {
  const state = useEventStream();
  const label = state === "open" ? "Live updates on" : state === "connecting" ? "Connecting…" : "Reconnecting…";
  return (
    <span className="flex items-center gap-2 text-xs text-muted-foreground" role="status" aria-live="polite" data-stream-state={state}>
      <span aria-hidden className={cn("size-2 rounded-full", state === "open" ? "bg-success" : "animate-pulse bg-warning")} />
      {label}
    </span>
  );
}

export function AppShell({ children }: { children: ReactNode }) {
  const { mode, userId, signOut } = useSession();
  return (
    <div className="flex min-h-dvh flex-col md:flex-row">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded-md focus:bg-background focus:p-2">
        Skip to content
      </a>
      <aside className="hidden w-60 shrink-0 flex-col gap-6 border-r p-4 md:flex">
        <Logo href="/dashboard" />
        <nav aria-label="Main">
          <NavLinks />
        </nav>
        <div className="mt-auto flex flex-col gap-3">
          <LiveIndicator />
          {mode === "clerk" ? (
            // Production: Clerk's own account menu (profile, sessions, sign out).
            <UserButton showName />
          ) : (
            <>
              <p className="truncate text-sm text-muted-foreground" title={userId ?? undefined}>
                {userId?.replace(/^user_/, "")}
              </p>
              <Button variant="outline" size="sm" onClick={() => void signOut()}>
                <LogOut aria-hidden /> Sign out
              </Button>
            </>
          )}
        </div>
      </aside>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-30 flex items-center justify-between gap-3 border-b bg-background/95 px-4 py-3 backdrop-blur md:px-8">
          <div className="md:hidden">
            <Logo href="/dashboard" />
          </div>
          <div className="hidden md:block" />
          <div className="flex items-center gap-3">
            <BalanceChip />
            {mode === "clerk" ? (
              <span className="md:hidden">
                <UserButton />
              </span>
            ) : (
              <Button variant="ghost" size="icon" className="md:hidden" onClick={() => void signOut()} aria-label="Sign out">
                <LogOut aria-hidden />
              </Button>
            )}
          </div>
        </header>
        <main id="main" className="mx-auto w-full max-w-6xl flex-1 px-4 py-6 pb-24 md:px-8 md:pb-8">
          {children}
        </main>
        <nav aria-label="Main" data-bottom-nav className="fixed inset-x-0 bottom-0 z-30 border-t bg-background/95 backdrop-blur md:hidden">
          <NavLinks compact />
        </nav>
      </div>
    </div>
  );
}
