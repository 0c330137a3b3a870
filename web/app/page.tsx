import { Camera, Check, ShieldCheck, Sparkles, Wand2 } from "lucide-react";
import type { ReactNode } from "react";

import { Logo } from "@/components/marketing/logo";
import { Button } from "@/components/ui/button";
import { ButtonLink } from "@/components/ui/button-link";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "@/components/ui/card";
import { fetchCatalogue } from "@/lib/catalogue";
import { formatCredits, formatMoney } from "@/lib/format";

const STEPS = [
  { icon: Camera, title: "Upload 10–30 photos", text: "Selfies and portraits in good light. We check each one and tell you why if one will not help." },
  { icon: Wand2, title: "Train your model", text: "About half an hour on the quality preset. You can watch it learn, live." },
  { icon: Sparkles, title: "Create from a sentence", text: "“Me as an astronaut on Mars, film photo.” Our prompt helper adds the detail." },
];

const EXAMPLES = [
  { prompt: "Studio portrait, soft rim light, charcoal backdrop", tone: "from-violet-500/60 via-fuchsia-500/40 to-slate-900" },
  { prompt: "Hiking at golden hour in the Dolomites, 35 mm film", tone: "from-amber-400/60 via-rose-500/40 to-slate-900" },
  { prompt: "Cyberpunk street at night, neon reflections, rain", tone: "from-cyan-400/60 via-indigo-500/50 to-slate-900" },
  { prompt: "Renaissance oil painting, velvet and gold leaf", tone: "from-emerald-400/50 via-teal-600/40 to-slate-900" },
];

const FAQ = [
  { q: "Who can see my photos and images?", a: "Only you. Every photo, model and image belongs to your account alone, and nobody else's model can ever be used with your face." },
  { q: "What happens if a training or an image fails?", a: "Your credits are held, not spent, until the work succeeds. A failed or canceled job releases them automatically." },
  { q: "Can I take my data with me, or delete it?", a: "Yes. Export everything as one archive from your account page, or delete your account and all of its data, at the provider too." },
  { q: "Do I need a subscription?", a: "No. Buy a credit pack once, or subscribe monthly for more credits and higher limits. Cancel any time." },
];

/** A section of the landing page under its heading; `width` is its max width (and any extra class). */
function Section({ id, titleId, title, width = "max-w-6xl", children }: { id?: string; titleId: string; title: string; width?: string; children: ReactNode }) {
  return (
    <section id={id} aria-labelledby={titleId} className={`mx-auto ${width} px-4 py-12 sm:px-6`}>
      <h2 id={titleId} className="text-2xl font-semibold">
        {title}
      </h2>
      {children}
    </section>
  );
}

export default async function LandingPage() {
  const catalogue = await fetchCatalogue();
  return (
    <div className="flex min-h-dvh flex-col">
      <header className="mx-auto flex w-full max-w-6xl items-center justify-between px-4 py-4 sm:px-6">
        <Logo />
        <nav aria-label="Account" className="flex items-center gap-2">
          <ButtonLink href="/sign-in" variant="ghost">Sign in</ButtonLink>
          <ButtonLink href="/sign-in?mode=sign-up">Get started</ButtonLink>
        </nav>
      </header>

      <main className="flex-1">
        <section className="mx-auto max-w-6xl px-4 pt-12 pb-16 text-center sm:px-6 sm:pt-20">
          <p className="mx-auto mb-4 w-fit rounded-full border border-accent/40 px-3 py-1 text-sm text-accent">Your personal AI photo studio</p>
          <h1 className="mx-auto max-w-3xl text-4xl font-bold tracking-tight text-balance sm:text-6xl">
            Photos of you, anywhere you can{" "}
            <span className="bg-gradient-to-r from-primary to-accent bg-clip-text text-transparent">imagine</span>
          </h1>
          <p className="mx-auto mt-5 max-w-2xl text-lg text-pretty text-muted-foreground">
            Visiona learns your face from a few photos and paints you into any scene you describe. Private by default, fair about money, and fast.
          </p>
          <div className="mt-8 flex flex-wrap justify-center gap-3">
            <ButtonLink href="/sign-in?mode=sign-up" size="lg">Create your model</ButtonLink>
            <Button asChild size="lg" variant="outline">
              <a href="#pricing">See pricing</a>
            </Button>
          </div>
        </section>

        <Section titleId="how" title="How it works">
          <ol className="mt-6 grid gap-4 md:grid-cols-3">
            {STEPS.map((step, index) => (
              <li key={step.title}>
                <Card className="h-full">
                  <CardHeader>
                    <step.icon aria-hidden className="mb-2 size-6 text-accent" />
                    <CardTitle>
                      <span className="text-muted-foreground">{index + 1}. </span>
                      {step.title}
                    </CardTitle>
                    <CardDescription>{step.text}</CardDescription>
                  </CardHeader>
                </Card>
              </li>
            ))}
          </ol>
        </Section>

        <Section titleId="examples" title="What people make">
          <ul className="mt-6 grid grid-cols-2 gap-4 lg:grid-cols-4">
            {EXAMPLES.map((example) => (
              <li key={example.prompt} className={`flex aspect-[3/4] items-end rounded-xl bg-gradient-to-br p-4 ${example.tone}`}>
                <p className="rounded-md bg-background/85 px-2 py-1 text-sm">“{example.prompt}”</p>
              </li>
            ))}
          </ul>
        </Section>

        <Section id="pricing" titleId="pricing-title" title="Pricing" width="max-w-6xl scroll-mt-8">
          <p className="mt-2 text-muted-foreground">
            {catalogue
              ? `A training costs ${catalogue.prices.training} credits; an image costs ${catalogue.prices.generation_image} credit${catalogue.prices.generation_image === 1 ? "" : "s"}. Credits are held, never spent, until the work succeeds.`
              : "Credit packs once, or a monthly plan."}
          </p>
          {catalogue ? (
            <div className="mt-6 grid gap-4 md:grid-cols-2 lg:grid-cols-4">
              {catalogue.packs.map((pack) => (
                <Card key={pack.id}>
                  <CardHeader>
                    <CardTitle>{pack.name}</CardTitle>
                    <CardDescription>One-time credit pack</CardDescription>
                  </CardHeader>
                  <CardContent>
                    <p className="text-3xl font-bold">{formatMoney(pack.unit_amount, pack.currency)}</p>
                    <p className="mt-1 text-muted-foreground">{formatCredits(pack.credits)}</p>
                  </CardContent>
                  <CardFooter className="mt-auto">
                    <ButtonLink href="/sign-in?mode=sign-up" variant="outline" className="w-full">Buy {pack.name}</ButtonLink>
                  </CardFooter>
                </Card>
              ))}
              {catalogue.plans.map((plan) => (
                <Card key={plan.id} className="border-primary/60">
                  <CardHeader>
                    <CardTitle>{plan.name}</CardTitle>
                    <CardDescription>Monthly plan</CardDescription>
                  </CardHeader>
                  <CardContent>
                    <p className="text-3xl font-bold">
                      {formatMoney(plan.unit_amount, plan.currency)}
                      <span className="text-base font-normal text-muted-foreground"> / {plan.interval}</span>
                    </p>
                    <ul className="mt-2 space-y-1 text-sm text-muted-foreground">
                      <li className="flex gap-2"><Check aria-hidden className="size-4 text-success" />{formatCredits(plan.monthly_credits)} every month</li>
                      <li className="flex gap-2"><Check aria-hidden className="size-4 text-success" />Higher limits</li>
                    </ul>
                  </CardContent>
                  <CardFooter className="mt-auto">
                    <ButtonLink href="/sign-in?mode=sign-up" className="w-full">Subscribe</ButtonLink>
                  </CardFooter>
                </Card>
              ))}
            </div>
          ) : (
            <p className="mt-6 rounded-lg border p-4 text-muted-foreground">Prices are shown once you sign in.</p>
          )}
        </Section>

        <Section titleId="faq" title="Questions" width="max-w-3xl">
          <div className="mt-6 divide-y rounded-xl border">
            {FAQ.map((item) => (
              <details key={item.q} className="group px-5 py-4">
                <summary className="cursor-pointer list-none rounded-md font-medium">{item.q}</summary>
                <p className="mt-2 text-muted-foreground">{item.a}</p>
              </details>
            ))}
          </div>
        </Section>
      </main>

      <footer className="border-t">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-2 px-4 py-6 text-sm text-muted-foreground sm:px-6">
          <span className="flex items-center gap-2"><ShieldCheck aria-hidden className="size-4" /> Your photos stay yours: export or delete everything, any time.</span>
          <span>© Visiona</span>
        </div>
      </footer>
    </div>
  );
}
