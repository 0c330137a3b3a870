import Link from "next/link";
import type * as React from "react";

import { Button } from "@/components/ui/button";

/** A link drawn as a button: Button's variants on Next's Link, so it navigates client-side. */
function ButtonLink({
  href,
  children,
  ...props
}: Omit<React.ComponentProps<typeof Button>, "asChild"> & { href: React.ComponentProps<typeof Link>["href"] }) {
  return (
    <Button asChild {...props}>
      <Link href={href}>{children}</Link>
    </Button>
  );
}

export { ButtonLink };
