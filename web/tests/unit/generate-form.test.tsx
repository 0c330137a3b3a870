import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { GenerateForm } from "@/components/generate/generate-form";
import { ProgressiveImage } from "@/components/gallery/progressive-image";
import { ApiContext, createApiClient, type Schemas } from "@/lib/api/client";

const MODEL: Schemas["Model"] = {
  id: "m1",
  name: "Alice",
  status: "succeeded",
  preset: "fast",
  trigger_word: "vsnalice",
  photo_count: 10,
  progress: 1,
  version: "v",
  failure: null,
  created_at: "2026-12-07T00:00:00Z",
  queued_at: null,
  started_at: null,
  finished_at: null,
  training_id: "t1",
  sample_urls: [],
};

const GENERATION = {
  id: "g1",
  model_id: "m1",
  status: "queued",
  prompt: "me on a beach",
  final_prompt: "vsnalice on a beach",
  enhanced: true,
  degraded: false,
  enhancement_reason: null,
  pack: null,
  num_outputs: 2,
  delivered: 0,
  aspect_ratio: "1:1",
  output_format: "webp",
  seed: null,
  failure: null,
  created_at: "2026-12-07T00:00:00Z",
  started_at: null,
  finished_at: null,
  images: [],
};

// Radix's Switch and Slider measure themselves; jsdom has no ResizeObserver.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
};

type Call = { method: string; path: string; headers: Headers; body: unknown };
let calls: Call[] = [];
let available = 50;

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json" } });
}

beforeEach(() => {
  calls = [];
  available = 50;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: Request) => {
      const url = new URL(input.url);
      const body = input.method === "POST" ? await input.clone().json().catch(() => null) : null;
      calls.push({ method: input.method, path: url.pathname, headers: input.headers, body });
      switch (`${input.method} ${url.pathname}`) {
        case "GET /v1/billing/balance":
          return json({ balance: available, held: 0, available });
        case "GET /v1/billing/plans":
          return json({ packs: [], plans: [], prices: { training: 150, generation_image: 4 }, free_limits: {}, current: {} });
        case "GET /v1/prompts/packs":
          return json({ packs: [{ id: "cinematic", name: "Cinematic", description: "Film stills", templates: [], negative_cues: [] }] });
        case "POST /v1/generations":
          if (String((body as { prompt?: string }).prompt).includes("gore"))
            return json({ status: 422, title: "Unprocessable content", code: "prompt_refused", detail: "Graphic violence and gore are not allowed." }, 422);
          await new Promise((resolve) => setTimeout(resolve, 50));
          return json(GENERATION, 202);
        default:
          return json({ code: "route_not_found" }, 404);
      }
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function Wrapper({ children }: { children: ReactNode }) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const api = createApiClient("http://api.test", async () => "token");
  return (
    <QueryClientProvider client={client}>
      <ApiContext.Provider value={{ api, baseUrl: "http://api.test" }}>{children}</ApiContext.Provider>
    </QueryClientProvider>
  );
}

function renderForm(props: Partial<Parameters<typeof GenerateForm>[0]> = {}) {
  const onStarted = vi.fn();
  const onRefused = vi.fn();
  render(<GenerateForm models={[MODEL]} initialModelId={null} onStarted={onStarted} onRefused={onRefused} {...props} />, { wrapper: Wrapper });
  return { onStarted, onRefused };
}

describe("GenerateForm", () => {
  it("shows the cost before generating and the trigger word hint", async () => {
    renderForm();
    expect(await screen.findByText("2 images × 4 credits = 8 credits")).toBeInTheDocument();
    expect(screen.getByText("vsnalice")).toBeInTheDocument();
    expect(screen.getByRole("switch", { name: "Enhance my prompt" })).toBeChecked();
  });

  it("sends one request with one Idempotency-Key for a double click", async () => {
    const user = userEvent.setup();
    const { onStarted } = renderForm();
    await screen.findByText("2 images × 4 credits = 8 credits");
    await user.type(screen.getByRole("textbox", { name: "Prompt" }), "me on a beach");
    await user.dblClick(screen.getByRole("button", { name: "Generate" }));
    await waitFor(() => expect(onStarted).toHaveBeenCalledTimes(1));
    const posts = calls.filter((c) => c.method === "POST" && c.path === "/v1/generations");
    expect(posts).toHaveLength(1);
    expect(posts[0]?.headers.get("Idempotency-Key")).toMatch(/^[0-9a-f-]{36}$/);
    expect(posts[0]?.body).toMatchObject({ model_id: "m1", prompt: "me on a beach", enhance: true, num_outputs: 2, aspect_ratio: "1:1", seed: null, lora_scale: null, pack: null });
  });

  it("says a refused prompt plainly and does not start anything", async () => {
    const user = userEvent.setup();
    const { onStarted, onRefused } = renderForm();
    await screen.findByText("2 images × 4 credits = 8 credits");
    await user.type(screen.getByRole("textbox", { name: "Prompt" }), "me covered in gore");
    await user.click(screen.getByRole("button", { name: "Generate" }));
    await waitFor(() => expect(onRefused).toHaveBeenCalledWith({ message: "Graphic violence and gore are not allowed." }));
    expect(onStarted).not.toHaveBeenCalled();
  });

  it("replaces the button with a way to buy credits when the balance is short", async () => {
    available = 5;
    renderForm();
    const link = await screen.findByRole("link", { name: /Not enough credits/ });
    expect(link).toHaveAttribute("href", "/billing");
    expect(screen.queryByRole("button", { name: "Generate" })).not.toBeInTheDocument();
    expect(screen.getByText(/You can afford 1 image\./)).toBeInTheDocument();
  });

  it("does not send an invalid seed", async () => {
    const user = userEvent.setup();
    renderForm();
    await screen.findByText("2 images × 4 credits = 8 credits");
    await user.type(screen.getByRole("textbox", { name: "Prompt" }), "me");
    await user.type(screen.getByRole("textbox", { name: "Seed (optional)" }), "1.5");
    await user.click(screen.getByRole("button", { name: "Generate" }));
    expect(screen.getByText(/Use a whole number/)).toBeInTheDocument();
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });
});

describe("ProgressiveImage", () => {
  const image = { id: "i1", blurhash: "LeEd?BogfQjcFlkBazaxs:oefPay", width: 96, height: 64 };

  it("shows the BlurHash placeholder until the picture has loaded, then only the picture", () => {
    const { container, rerender } = render(<ProgressiveImage image={image} src={null} alt="A beach" />);
    expect(container.querySelector("[data-placeholder]")).toHaveStyle({ backgroundImage: expect.stringContaining("data:image/bmp;base64,") as string });
    expect(container.querySelector("img[data-image-id]")).toBeNull();

    rerender(<ProgressiveImage image={image} src="https://s3/i1.webp" alt="A beach" />);
    const img = container.querySelector("img[data-image-id='i1']");
    expect(img).toHaveAttribute("src", "https://s3/i1.webp");
    expect(container.querySelector("[data-placeholder]")).not.toBeNull();

    img!.dispatchEvent(new Event("load"));
    return waitFor(() => expect(container.querySelector("[data-placeholder]")).toBeNull());
  });

  it("can leave out the data-image-id marker for decorative copies", () => {
    const { container } = render(<ProgressiveImage image={image} src="https://s3/i1.webp" alt="" marked={false} />);
    expect(container.querySelector("img")).not.toHaveAttribute("data-image-id");
  });
});
