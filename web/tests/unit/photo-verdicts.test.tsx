import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { countText, reasonText, verdictOf } from "@/components/photos/photo-reasons";
import { PhotoVerdicts } from "@/components/photos/photo-verdicts";
import type { Phase, UploadItem } from "@/components/photos/upload-queue";
import type { Schemas } from "@/lib/api/client";

import { photoWith } from "./photos";

function photo(status: Schemas["Photo"]["status"], reasons: string[] = [], overrides: Partial<Schemas["Photo"]> = {}): Schemas["Photo"] {
  return photoWith({ id: `p-${status}`, status, reasons, ...overrides });
}

function item(key: string, phase: Phase): UploadItem {
  return { key, name: `${key}.jpg`, size: 2048, contentType: "image/jpeg", previewUrl: null, phase, slot: null, uploaded: false, attempts: 1 };
}

describe("reason codes in words", () => {
  it("has a sentence for every code the gateway documents", () => {
    const codes = ["not_an_image", "unsupported_type", "truncated", "too_many_pixels", "too_small", "duplicate", "no_face", "several_faces", "blurry", "trailing_data"];
    for (const code of codes) {
      const text = reasonText(code, photo("rejected", [code]));
      expect(text).not.toMatch(/_/);
      expect(text).not.toMatch(/^Flagged/);
    }
  });

  it("uses the measurements the photo carries", () => {
    expect(reasonText("too_small", photo("rejected", ["too_small"], { width: 160, height: 200 }))).toBe(
      "It is too small: 160 × 200 pixels. Use photos at least 512 pixels on the short side.",
    );
    expect(reasonText("several_faces", photo("rejected", ["several_faces"], { faces: 3 }))).toMatch(/^We found 3 faces\. Use photos of only you/);
  });

  it("face codes only warn when the photo was accepted (face policy flag)", () => {
    expect(reasonText("no_face", photo("accepted_with_warnings", ["no_face"], { require_one_face: false }))).toBe(
      "We could not find a face; the model may learn less from it.",
    );
  });

  it("an unknown code still reads as words", () => {
    expect(reasonText("odd_new_thing", photo("rejected"))).toBe("Flagged: odd new thing.");
  });

  it("a rejection always says why, even without codes", () => {
    expect(verdictOf(photo("rejected")).reasons).toEqual(["This photo cannot be used for training."]);
    expect(verdictOf(photo("accepted"))).toEqual({ tone: "success", title: "Accepted", reasons: [] });
    expect(verdictOf(photo("uploading")).title).toBe("Upload not finished");
  });
});

describe("the 10-30 count", () => {
  it("says how many more are needed, then that it is enough, then the cap", () => {
    expect(countText(8)).toEqual({ text: "8 accepted — add 2 more to train", ready: false });
    expect(countText(0).text).toBe("0 accepted — add 10 more to train");
    expect(countText(10)).toEqual({ text: "10 accepted — enough to train", ready: true });
    expect(countText(30).ready).toBe(true);
    expect(countText(34).text).toMatch(/^34 accepted — a training uses at most 30/);
  });
});

describe("PhotoVerdicts", () => {
  const items = [
    item("waiting", { kind: "queued" }),
    item("going", { kind: "uploading", loaded: 512, total: 2048 }),
    item("checking", { kind: "completing" }),
    item("good", { kind: "verdict", photo: photo("accepted") }),
    item("soft", { kind: "verdict", photo: photo("accepted_with_warnings", ["blurry"]) }),
    item("bad", { kind: "verdict", photo: photo("rejected", ["no_face", "too_small"], { width: 300, height: 200 }) }),
    item("broken", { kind: "failed", failure: { reason: "network", message: "The upload could not reach storage.", code: "network_error" } }),
    item("gif", { kind: "refused", message: "GIF images are not accepted. Use JPEG, PNG, WebP or HEIC photos." }),
  ];

  function row(name: string): HTMLElement {
    const element = screen.getByText(`${name}.jpg`).closest("li");
    if (!element) throw new Error(`no row for ${name}`);
    return element;
  }

  it("marks each row with its status for the browser tests", () => {
    render(<PhotoVerdicts items={items} onRetry={() => {}} onRemove={() => {}} />);
    const statuses = within(screen.getByRole("list", { name: "Uploads" }))
      .getAllByRole("listitem")
      .map((li) => li.getAttribute("data-photo-status"))
      .filter(Boolean);
    expect(statuses).toEqual(["queued", "uploading", "completing", "accepted", "accepted_with_warnings", "rejected", "failed", "refused"]);
  });

  it("shows progress as a progress bar with its percentage", () => {
    render(<PhotoVerdicts items={items} onRetry={() => {}} onRemove={() => {}} />);
    const bar = screen.getByRole("progressbar", { name: "Uploading going.jpg" });
    expect(bar).toHaveAttribute("aria-valuenow", "25");
    expect(within(row("going")).getByText("25%")).toBeInTheDocument();
    expect(within(row("checking")).getByText(/checking the photo/)).toBeInTheDocument();
  });

  it("gives each verdict and its reasons in words", () => {
    render(<PhotoVerdicts items={items} onRetry={() => {}} onRemove={() => {}} />);
    expect(within(row("good")).getByText("Accepted")).toBeInTheDocument();
    expect(within(row("soft")).getByText("Accepted, with notes")).toBeInTheDocument();
    expect(within(row("soft")).getByText(/looks blurry/)).toBeInTheDocument();
    const bad = within(row("bad"));
    expect(bad.getByText("Rejected")).toBeInTheDocument();
    expect(bad.getByText("We could not find a face. Use a photo where your face is clearly visible.")).toBeInTheDocument();
    expect(bad.getByText(/too small: 300 × 200 pixels/)).toBeInTheDocument();
  });

  it("a failed upload says so and retries on request; a refused file says why", async () => {
    const onRetry = vi.fn();
    const onRemove = vi.fn();
    render(<PhotoVerdicts items={items} onRetry={onRetry} onRemove={onRemove} />);
    const broken = within(row("broken"));
    expect(broken.getByText("Upload failed.")).toBeInTheDocument();
    expect(broken.getByText("network_error")).toBeInTheDocument();
    await userEvent.click(broken.getByRole("button", { name: "Retry broken.jpg" }));
    expect(onRetry).toHaveBeenCalledWith("broken");

    const gif = within(row("gif"));
    expect(gif.getByText(/GIF images are not accepted/)).toBeInTheDocument();
    expect(gif.queryByRole("button", { name: /Retry/ })).toBeNull();
    await userEvent.click(gif.getByRole("button", { name: "Dismiss gif.jpg" }));
    expect(onRemove).toHaveBeenCalledWith("gif");
  });

  it("no Retry while a file is on its way", () => {
    render(<PhotoVerdicts items={items} onRetry={() => {}} onRemove={() => {}} />);
    for (const name of ["going", "checking", "good"]) {
      expect(within(row(name)).queryByRole("button")).toBeNull();
    }
  });

  it("renders nothing for an empty queue", () => {
    const { container } = render(<PhotoVerdicts items={[]} onRetry={() => {}} onRemove={() => {}} />);
    expect(container).toBeEmptyDOMElement();
  });
});
