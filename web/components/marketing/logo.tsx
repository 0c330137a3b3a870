import { Sparkles } from "lucide-react";
import Link from "next/link";

export function Logo({ href = "/" }: { href?: string }) {
  return (
    <Link href={href} className="flex items-center gap-2 rounded-md text-lg font-semibold tracking-tight">
      <span aria-hidden className="grid size-8 place-items-center rounded-lg bg-gradient-to-br from-primary to-accent text-primary-foreground">
        <Sparkles className="size-4" />
      </span>
      Visiona
    </Link>
  );
}
