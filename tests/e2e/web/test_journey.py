"""The whole product in a browser, as a new user meets it: sign in, buy the starter pack on
Stripe's checkout page, upload ten photos and a bad file, train and watch it live, generate
two images with enhance (a double click charging once), favourite and download one, export
the account, delete it. Every page is photographed at phone and desktop width and checked
by axe."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.test_billing import balance
from tests.e2e.training_helpers import api
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from tests.support.web import Screens, assert_accessible, assert_no_raw_problem, new_user, sign_in
from visiona.cli.samples import write_photos

PROMPT = "me as an astronaut on the moon, film photo"
# Records each new value of a data-model-status attribute in the page, in order.
WATCH_STATUSES = """() => {
  window.__statuses = [];
  const note = (el) => {
    const s = el.getAttribute("data-model-status");
    if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
  };
  new MutationObserver((changes) => {
    for (const c of changes) {
      if (c.type === "attributes") note(c.target);
      for (const n of c.addedNodes || []) {
        if (n.nodeType !== 1) continue;
        if (n.hasAttribute("data-model-status")) note(n);
        n.querySelectorAll("[data-model-status]").forEach(note);
      }
    }
  }).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-model-status"],
  });
}"""


def look(page: Page, shots: Screens, name: str) -> None:
    """What a person sees here: no raw problem, nothing axe finds serious, photographed."""
    assert_no_raw_problem(page)
    assert_accessible(page, name)
    shots.take(page, name)


def test_a_new_user_does_everything_in_the_browser(
    stack: RunningStack,
    new_context: Callable[..., BrowserContext],
    shots: Screens,
    tmp_path: Path,
) -> None:
    user = new_user("journey")
    page = sign_in(new_context(accept_downloads=True), user)
    look(page, shots, "dashboard-new")

    # Credits: the starter pack through Stripe's hosted page; the webhook grants them.
    page.goto("/billing")
    page.get_by_role("button", name=re.compile(r"^Buy starter", re.I)).click()
    page.wait_for_url(re.compile(rf"127\.0\.0\.1:{stack.cfg.ports['stripe']}/checkout/"))
    page.get_by_role("button", name=re.compile(r"^Pay \d")).click()
    page.wait_for_url(re.compile(r"/billing"))
    expect(page.get_by_text(re.compile(r"credits added", re.I)).first).to_be_visible(timeout=60_000)
    credits = balance(stack, user)["available"]
    assert credits > 0
    look(page, shots, "billing-credits-arrived")

    # Ten photos of one person and a file that is no picture: each gets its verdict.
    photos = write_photos(tmp_path / "photos", 10)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    page.goto("/photos")
    page.get_by_label("Choose photos").set_input_files([*map(str, photos), str(bad)])
    accepted = page.locator(
        "[data-photo-status=accepted], [data-photo-status=accepted_with_warnings]"
    )
    expect(accepted).to_have_count(10, timeout=180_000)
    expect(page.locator("[data-photo-status=rejected]")).to_have_count(1, timeout=60_000)
    expect(page.get_by_text("This file is not a picture we can read.")).to_be_visible()
    look(page, shots, "photos-verdicts")

    # Train, and watch it live: training with progress, then ready.
    page.goto("/train")
    page.get_by_label("Name").fill("Me")
    look(page, shots, "train-form")
    # Every status the page shows, as it shows it (the test stack trains in seconds).
    page.evaluate(WATCH_STATUSES)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("progressbar").first).to_be_visible(timeout=60_000)
    shots.take(page, "train-progress")
    expect(page.locator("[data-model-status=succeeded]")).to_be_visible(timeout=300_000)
    seen = page.evaluate("window.__statuses")
    assert seen[-1] == "succeeded" and len(seen) >= 2, seen
    assert set(seen[:-1]) <= {"awaiting_credits", "preparing", "queued", "training"}, seen
    look(page, shots, "train-ready")
    page.goto("/models")
    expect(page.get_by_role("article", name="Me")).to_be_visible()
    look(page, shots, "models")
    after_training = balance(stack, user)
    assert after_training["held"] == 0 and after_training["available"] < credits

    # Generate two images with enhance on; a double click sends one request, charged once.
    page.goto("/generate")
    page.get_by_role("textbox", name="Prompt").fill(PROMPT)
    enhance = page.get_by_role("switch", name="Enhance my prompt")
    if enhance.get_attribute("aria-checked") != "true":
        enhance.click()
    page.get_by_role("radio", name="2", exact=True).click()
    look(page, shots, "generate-form")
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.url) if r.method == "POST" and "/v1/generations" in r.url else None
        ),
    )
    page.get_by_role("button", name="Generate", exact=True).dblclick()
    results = page.get_by_test_id("generation-results")
    expect(results).to_have_attribute("data-generation-status", "succeeded", timeout=120_000)
    expect(results.locator("img[data-image-id]")).to_have_count(2, timeout=60_000)
    expect(page.get_by_text("Enhanced prompt we used")).to_be_visible()
    look(page, shots, "generate-done")
    assert len(posts) == 1, posts
    with api(stack, user) as c:
        price = c.get("/v1/billing/plans").json()["prices"]["generation_image"]
    now = wait_for(
        "the two images' credits to be captured",
        lambda: balance(stack, user),
        lambda b: b["held"] == 0,
    )
    assert after_training["available"] - now["available"] == 2 * price

    # The gallery: both images; favourite one, download it from the lightbox.
    page.goto("/gallery")
    tiles = page.locator("img[data-image-id]")
    expect(tiles).to_have_count(2)
    page.get_by_role("button", name="Favourite").first.click()
    expect(page.get_by_role("button", name="Favourite").first).to_have_attribute(
        "aria-pressed", "true"
    )
    look(page, shots, "gallery")
    tiles.first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shots.take(page, "gallery-lightbox")
    with page.expect_download() as download:
        dialog.get_by_role("link", name=re.compile("Download")).click()
    assert download.value.suggested_filename.startswith("visiona-")
    assert Path(download.value.path()).stat().st_size > 0
    page.keyboard.press("Escape")

    # Export the account, then delete it: typed confirmation, progress, signed out.
    page.goto("/account")
    page.get_by_role("button", name=re.compile("Export my data")).click()
    expect(page.get_by_role("link", name=re.compile("Download your data"))).to_be_visible(
        timeout=120_000
    )
    look(page, shots, "account-export-ready")
    page.get_by_role("button", name=re.compile("Delete my account")).first.click()
    confirm = page.get_by_role("alertdialog")
    destroy = confirm.get_by_role("button", name=re.compile("Delete my account"))
    expect(destroy).to_be_disabled()
    confirm.get_by_role("textbox").fill("delete my account")
    shots.take(page, "account-delete-dialog")
    destroy.click()
    expect(page.get_by_role("progressbar", name=re.compile("Deletion progress"))).to_be_visible()
    shots.take(page, "account-deleting")
    page.wait_for_url(re.compile(r"/$"), timeout=180_000)
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
