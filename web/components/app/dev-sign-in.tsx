"use client";

import { FlaskConical } from "lucide-react";
import { useState, type FormEvent } from "react";

import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Switch } from "@/components/ui/switch";

const USER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Local sign-in (dev mode): any name is an account; the dev issuer signs a real session token. */
export function DevSignIn({ redirectTo }: { redirectTo: string }) {
  const [name, setName] = useState("");
  const [operator, setOperator] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const user = name.trim();
    if (!USER_NAME.test(user)) {
      setError("Use 1–64 letters, digits, “-” or “_”, without spaces.");
      return;
    }
    setPending(true);
    setError(null);
    try {
      const response = await fetch("/api/dev/session", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user, operator }),
      });
      if (!response.ok) {
        const problem = (await response.json().catch(() => null)) as { detail?: string } | null;
        setError(problem?.detail ?? "Sign-in did not work. Try again.");
        return;
      }
      window.location.assign(redirectTo);
    } catch {
      setError("The local sign-in service is out of reach. Is `make up` running?");
    } finally {
      setPending(false);
    }
  }

  return (
    <Card className="w-full max-w-sm">
      <CardHeader>
        <CardTitle className="text-xl">Sign in</CardTitle>
        <CardDescription className="flex items-start gap-2">
          <FlaskConical aria-hidden className="mt-0.5 size-4 shrink-0 text-warning" />
          Local development: pick any name. Each name is its own account, with its own photos, models and credits.
        </CardDescription>
      </CardHeader>
      <CardContent>
        <form onSubmit={submit} className="flex flex-col gap-4" noValidate>
          <div className="flex flex-col gap-2">
            <Label htmlFor="dev-user">Your name</Label>
            <Input
              id="dev-user"
              name="user"
              autoComplete="username"
              autoFocus
              placeholder="alice"
              value={name}
              onChange={(event) => setName(event.target.value)}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? "dev-user-error" : undefined}
            />
            {error ? (
              <p id="dev-user-error" role="alert" className="text-sm text-destructive">
                {error}
              </p>
            ) : null}
          </div>
          <div className="flex items-start gap-3">
            <Switch id="dev-operator" checked={operator} onCheckedChange={setOperator} aria-describedby="dev-operator-hint" />
            <div className="flex flex-col gap-1">
              <Label htmlFor="dev-operator">Sign in as an operator</Label>
              <p id="dev-operator-hint" className="text-sm text-muted-foreground">
                Support staff: adds the Operations console (stuck jobs, credits by hand, dead letters).
              </p>
            </div>
          </div>
          <Button type="submit" disabled={pending}>
            {pending ? "Signing in…" : "Continue"}
          </Button>
        </form>
      </CardContent>
    </Card>
  );
}
