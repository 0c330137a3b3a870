"""web_generation_share: what the web app adds to a generation, against the API alone.

The whole platform runs with ``LocalStack`` (SeaweedFS and the Replicate emulator included,
the emulator started at ``PREDICTION_S`` = 3.0 s per prediction and no start delay) and the
web app's production build is served beside it (``bench/web_app.py``). One user buys the Pro
pack, uploads 10 photos and trains a model, through the gateway.

Candidate: in Chromium (Python Playwright, Debian's Chromium), signed in with the app's
``__session`` cookie, on ``/generate``: the prompt typed, "Enhance my prompt" off, the other
fields left as the page sets them (the user's one ready model preselected, its number of
images), then the click on "Generate" → the moment the last of the generation's images is
shown: every ``img[data-image-id]`` in the results region (``data-testid=
"generation-results"``) ``complete`` with a ``naturalWidth``. Timed in the page, on its own
clock: from the click event's ``timeStamp`` to the last image's ``load`` event.

Baseline: the same generation through the API alone, the request body the page sent (same
model, prompt, number of images, options): ``POST /v1/generations`` → the first
``GET /v1/generations/{id}`` showing ``succeeded`` with all its images, polled every 25 ms as
``orchestration_share`` does.

Per round, ``PAIRS_PER_ROUND`` pairs, one of each side, the side going first alternating;
ratio = median candidate ÷ median baseline, lower is better, goal ``<= 1.05``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bench.common import (
    BenchError,
    BrokerWatch,
    Measurement,
    Result,
    interleaved,
    load_average,
    percentile,
    undisturbed,
)
from bench.generation_flow import Generation, generate, settle
from bench.web_app import (
    CHROMIUM,
    WebPlatform,
    WebUser,
    ready_web_user,
    session_cookie,
    web_platform,
)

NAME = "web_generation_share"
GOAL = "<= 1.05"
PREDICTION_S = 3.0
POLL_S = 0.025
PAIRS_PER_ROUND = 2
WARMUP = 1
PROMPT = "me on a beach at golden hour, film photo"
GENERATION_TIMEOUT_MS = 60_000
PAGE_READY_TIMEOUT_MS = 30_000
RESULTS = '[data-testid="generation-results"]'
IMAGES = f"{RESULTS} img[data-image-id]"
EMULATOR_ENV = {
    "REPLICATE_EMULATOR_PREDICTION_DURATION_S": str(PREDICTION_S),
    "REPLICATE_EMULATOR_START_DELAY_S": "0",
    "REPLICATE_EMULATOR_TRAINING_DURATION_S": "1",
}
# In every page, before its own scripts: the click's time, each status the results region
# shows and when, when each image element appears and when it loads (performance.now()).
INSTRUMENT = """
(() => {
  const b = (window.__bench = { armed: false, click: null, statuses: {}, shown: {}, loads: {} });
  document.addEventListener("click", (e) => {
    if (b.armed && b.click === null) b.click = e.timeStamp;
  }, true);
  document.addEventListener("load", (e) => {
    const t = e.target;
    if (t instanceof HTMLImageElement && t.dataset.imageId && !(t.dataset.imageId in b.loads))
      b.loads[t.dataset.imageId] = performance.now();
  }, true);
  const look = () => {
    const now = performance.now();
    const section = document.querySelector('__RESULTS__');
    const status = section && section.getAttribute("data-generation-status");
    if (b.click !== null && status && !(status in b.statuses)) b.statuses[status] = now;
    for (const img of document.querySelectorAll('__IMAGES__'))
      if (!(img.dataset.imageId in b.shown)) b.shown[img.dataset.imageId] = now;
  };
  new MutationObserver(look).observe(document, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-generation-status", "data-image-id", "src"],
  });
})();
""".replace("__RESULTS__", RESULTS).replace("__IMAGES__", IMAGES)
# Every expected image shown and decoded: the detection time, else false.
ALL_SHOWN = """
(n) => {
  const imgs = [...document.querySelectorAll('__IMAGES__')];
  return imgs.length >= n && imgs.every((i) => i.complete && i.naturalWidth > 0)
    ? performance.now() : false;
}
""".replace("__IMAGES__", IMAGES)
READ = """
() => {
  const b = window.__bench;
  const post = performance.getEntriesByType("resource").filter(
    (e) => e.initiatorType === "fetch" && new URL(e.name).pathname === "/v1/generations"
      && e.startTime >= b.click);
  const ids = [...document.querySelectorAll('__IMAGES__')].map((i) => i.dataset.imageId);
  return {
    click: b.click, statuses: b.statuses, shown: b.shown, loads: b.loads, ids,
    post: post.length ? { start: post[0].startTime, end: post[0].responseEnd } : null,
  };
}
""".replace("__IMAGES__", IMAGES)
NOTES = (
    "Candidate: the click event's timeStamp → the load event of the last of the generation's "
    "img[data-image-id] in the results region, on the page's own clock (performance.now()); "
    "detected_ms is when a requestAnimationFrame poll saw them all complete. Each round loads "
    "/generate afresh and waits for the live event stream (GET /v1/events) to answer before "
    "typing. Baseline: the page's own request body sent by httpx, then GET every 25 ms until "
    "succeeded with its images (the images' bytes are not fetched; api_with_download_* adds "
    "fetching them all, side by side). One user, so the two sides never overlap (the plan "
    "runs one generation at a time). The load generator and Chromium share the 2 cores with "
    "every service, Postgres, RabbitMQ and SeaweedFS."
)


@dataclass
class WebSample:
    generation_id: str
    end_to_end_s: float  # click → the last image's load event
    detected_s: float  # click → the poll that saw every image shown
    wall_s: float  # this process: click() called → the wait returned
    num_outputs: int
    breakdown_s: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) / 1000, 4)


async def open_generate(page: Page, web: WebPlatform) -> bool:
    """``/generate`` loaded afresh; True when the live event stream answered (it is opened by
    the app shell, and a generation's outcome arrives on it)."""
    try:
        async with page.expect_response(
            lambda r: urlparse(r.url).path == "/v1/events", timeout=PAGE_READY_TIMEOUT_MS
        ):
            response = await page.goto(f"{web.origin}/generate", wait_until="load")
            status = response.status if response else None
            if status != 200:
                raise BenchError(
                    f"/generate answered {status}: is the Generate page in this build?"
                )
        sse = True
    except PlaywrightTimeoutError:  # the page may not open the stream: measured all the same
        sse = False
    if urlparse(page.url).path != "/generate":
        raise BenchError(f"/generate ended on {page.url} (not signed in?)")
    return sse


async def web_generation(page: Page, web: WebPlatform, user: WebUser) -> WebSample:
    """One generation as a person makes it on ``/generate``, timed in the page."""
    await open_generate(page, web)
    button = page.get_by_role("button", name="Generate", exact=True)
    await button.wait_for(state="visible", timeout=PAGE_READY_TIMEOUT_MS)
    await page.get_by_label("Prompt", exact=True).fill(PROMPT)
    enhance = page.get_by_role("switch", name="Enhance my prompt")
    if await enhance.get_attribute("aria-checked") == "true":
        await enhance.click()
    deadline = time.monotonic() + PAGE_READY_TIMEOUT_MS / 1000
    while not await button.is_enabled():  # the model list and balance still loading
        if time.monotonic() > deadline:
            raise BenchError("the Generate button stayed disabled")
        await asyncio.sleep(0.05)
    await page.evaluate("window.__bench.armed = true")
    started = time.perf_counter()
    async with page.expect_response(
        lambda r: r.request.method == "POST" and urlparse(r.url).path == "/v1/generations",
        timeout=PAGE_READY_TIMEOUT_MS,
    ) as posted:
        await button.click()
    response = await posted.value
    if response.status != 202:
        raise BenchError(f"the page's POST /v1/generations answered {response.status}")
    body = response.request.post_data_json or {}
    created = await response.json()
    expected = int(body.get("num_outputs", 1))
    detected = await page.wait_for_function(
        ALL_SHOWN, arg=expected, polling="raf", timeout=GENERATION_TIMEOUT_MS
    )
    wall = time.perf_counter() - started
    seen = await page.evaluate(READ)
    generation_id = str(created["id"])
    got = await user.call("GET", f"/v1/generations/{generation_id}", 200)
    api_ids = sorted(str(i["id"]) for i in got.get("images") or [])
    if got["status"] != "succeeded" or sorted(seen["ids"]) != api_ids:
        raise BenchError(
            f"the page shows {seen['ids']} for generation {generation_id}, "
            f"the API {got['status']} {api_ids}"
        )
    click = seen["click"]
    if click is None:
        raise BenchError("the page saw no click event on Generate")
    loads = [seen["loads"].get(i) for i in seen["ids"]]
    last_load = max(loads) if all(v is not None for v in loads) else None
    shown = [seen["shown"][i] for i in seen["ids"] if i in seen["shown"]]
    detected_at = float(await detected.json_value())
    end = last_load if last_load is not None else detected_at
    post = seen["post"] or {}
    succeeded_at = seen["statuses"].get("succeeded")
    return WebSample(
        generation_id=generation_id,
        end_to_end_s=round((end - click) / 1000, 4),
        detected_s=round((detected_at - click) / 1000, 4),
        wall_s=round(wall, 4),
        num_outputs=expected,
        breakdown_s={
            "click_to_post_s": _ms(click, post.get("start")),
            "post_to_202_s": _ms(post.get("start"), post.get("end")),
            "202_to_status_succeeded_s": _ms(post.get("end"), succeeded_at),
            "202_to_first_image_element_s": _ms(post.get("end"), min(shown, default=None)),
            "first_element_to_last_load_s": _ms(min(shown, default=None), last_load),
            "statuses_s": {k: _ms(click, v) for k, v in seen["statuses"].items()},
        },
        body=body,
    )


async def download_all(gen: Generation) -> float:
    """Seconds to fetch every image of a succeeded generation, side by side."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        got = await asyncio.gather(*(client.get(i["url"]) for i in gen.body["images"]))
    if any(r.status_code != 200 or not r.content for r in got):
        raise BenchError(f"an image of {gen.id} did not download: {[r.status_code for r in got]}")
    return time.perf_counter() - started


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(statistics.median(values), 4),
        "p99_s": round(percentile(values, 99), 4),
        "min_s": round(min(values), 4),
        "max_s": round(max(values), 4),
    }


async def _measure(web: WebPlatform, rounds: int) -> Result:
    load_at_start = load_average()
    config = await web.stack.replicate_config()  # the start-up values, from EMULATOR_ENV
    if config.get("prediction_duration_s") != PREDICTION_S or config.get("start_delay_s") != 0:
        raise BenchError(f"the Replicate emulator is not at {PREDICTION_S} s: {config}")
    user = await ready_web_user(web, "webgen")
    watch = BrokerWatch()
    await watch.open()
    repeated = 0
    web_samples: list[WebSample] = []
    api_samples: list[Generation] = []
    downloads: list[float] = []
    sse_open: list[bool] = []
    template: dict[str, Any] = {}

    try:
        async with async_playwright() as p:
            browser: Browser = await p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            await context.add_cookies([session_cookie(web, user)])  # type: ignore[list-item]
            await context.add_init_script(INSTRUMENT)
            page = await context.new_page()
            sse_open.append(await open_generate(page, web))

            async def on_web() -> WebSample:
                nonlocal repeated
                sample, repeats = await undisturbed(
                    watch, lambda: web_generation(page, web, user), settle
                )
                repeated += repeats
                if template and sample.num_outputs != int(template.get("num_outputs", 1)):
                    raise BenchError(f"the page asked for {sample.body}, earlier {template}")
                return sample

            async def on_api() -> Generation:
                nonlocal repeated
                gen, repeats = await undisturbed(
                    watch, lambda: generate(user, POLL_S, body=template), settle
                )
                repeated += repeats
                downloads.append(gen.end_to_end_s + await download_all(gen))
                return gen

            # Warm-up: the page's request is the template of the API's.
            warm_web = [await on_web() for _ in range(WARMUP)]
            template.update(
                {k: v for k, v in warm_web[0].body.items() if k != "seed"}
                | {"model_id": user.model_id}
            )
            warm_api = [await on_api() for _ in range(WARMUP)]
            downloads.clear()
            for _, web_first in interleaved(rounds):
                for _ in range(PAIRS_PER_ROUND):
                    if web_first:
                        web_samples.append(await on_web())
                        api_samples.append(await on_api())
                    else:
                        api_samples.append(await on_api())
                        web_samples.append(await on_web())
            await browser.close()
    finally:
        await user.client.aclose()
        await watch.close()

    web_e2e = [s.end_to_end_s for s in web_samples]
    api_e2e = [g.end_to_end_s for g in api_samples]
    web_p50 = statistics.median(web_e2e)
    api_p50 = statistics.median(api_e2e)
    breakdown_keys = [k for k in web_samples[0].breakdown_s if k != "statuses_s"]
    web_breakdown = {
        k: _median([s.breakdown_s.get(k) for s in web_samples]) for k in breakdown_keys
    }
    return Result(
        name=NAME,
        ratio=web_p50 / api_p50,
        goal=GOAL,
        candidate=Measurement(
            p50_ms=web_p50 * 1000,
            p99_ms=percentile(web_e2e, 99) * 1000,
            rps=len(web_e2e) / sum(web_e2e),
        ),
        baseline=Measurement(
            p50_ms=api_p50 * 1000,
            p99_ms=percentile(api_e2e, 99) * 1000,
            rps=len(api_e2e) / sum(api_e2e),
        ),
        rounds=rounds,
        extra={
            "web_p50_s": round(web_p50, 4),
            "api_p50_s": round(api_p50, 4),
            "added_p50_ms": round((web_p50 - api_p50) * 1000, 1),
            "web": _stats(web_e2e),
            "api": _stats(api_e2e),
            "web_detected_p50_s": round(statistics.median(s.detected_s for s in web_samples), 4),
            "web_wall_p50_s": round(statistics.median(s.wall_s for s in web_samples), 4),
            "api_with_download_p50_s": round(statistics.median(downloads), 4),
            "ratio_to_api_with_download": round(web_p50 / statistics.median(downloads), 4),
            "web_breakdown_p50_s": web_breakdown,
            "api_breakdown_p50_s": {
                "post_to_202_s": round(statistics.median(g.accepted_s for g in api_samples), 4),
                "polls": statistics.median(g.polls for g in api_samples),
            },
            "num_outputs": int(template.get("num_outputs", 1)),
            "request": {k: v for k, v in template.items() if k != "model_id"},
            "provider_s": PREDICTION_S,
            "samples": {
                "web": [
                    {
                        "end_to_end_s": s.end_to_end_s,
                        "detected_s": s.detected_s,
                        "wall_s": s.wall_s,
                        **s.breakdown_s,
                    }
                    for s in web_samples
                ],
                "api": [round(g.end_to_end_s, 4) for g in api_samples],
            },
            "pairs_per_round": PAIRS_PER_ROUND,
            "warmup": {
                "web_s": [s.end_to_end_s for s in warm_web],
                "api_s": [round(g.end_to_end_s, 4) for g in warm_api],
            },
            "event_stream_open_before_first_round": all(sse_open),
            "poll_interval_s": POLL_S,
            "repeated_for_broker_closures": repeated,
            "setup_s": user.setup_s,
            "build_id": web.build_id,
            "load_avg_1m_at_start": load_at_start,
            "notes": NOTES,
        },
        headline=("web_p50_s", "api_p50_s", "added_p50_ms", "num_outputs"),
    )


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def run(rounds: int) -> Result:
    with web_platform("webgen", EMULATOR_ENV) as web:
        return asyncio.run(_measure(web, rounds))
