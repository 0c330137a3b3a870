"""web_vitals: Lighthouse on the web app's production build, against the whole platform.

The platform runs with ``LocalStack`` (SeaweedFS and the Replicate emulator included) and the
production build (``make web``) is served by ``next start`` beside it (``bench/web_app.py``).
One user is seeded through the gateway: the Pro pack (Stripe emulator checkout), 10 photos, a
``fast`` training, then generations of 4 images until the gallery holds 200 (the emulator set
to 0.2 s per prediction for the seeding).

Lighthouse (the ``lighthouse`` package pinned in ``web/``) audits, offline against Debian's
Chromium, with the desktop preset: the landing page (signed out), the dashboard and the
gallery (signed in as the seeded user), and a trivial static HTML page served from this
process (the baseline: what the machine scores for a page that costs nothing). Each round
audits every page once, in an order that rotates, and once more with Lighthouse's default
mobile settings (performance only, reported beside the ratio, in no goal); figures are
medians over rounds, metric by metric.

ratio = the lowest of the three pages' median performance scores (0 to 1), goal ``>= 0.9``.
Beside it: accessibility 1.0, LCP <= 2.5 s, CLS <= 0.1 on every page, and each route's
first-load JavaScript, gzipped, from the build's manifests, <= 200 kB.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.server
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from bench.common import BenchError, Measurement, Result, load_average, percentile
from bench.generation_flow import generate
from bench.web_app import (
    CHROME_FLAGS,
    CHROMIUM,
    WEB,
    WebPlatform,
    WebUser,
    node_binary,
    ready_web_user,
    session_cookie,
    web_platform,
)
from visiona.emulators.ports import free_port
from visiona.emulators.stack import stop_process

NAME = "web_vitals"
GOAL = ">= 0.9"
# page → (path, signed in?)
PAGES: dict[str, tuple[str, bool]] = {
    "landing": ("/", False),
    "dashboard": ("/dashboard", True),
    "gallery": ("/gallery", True),
}
BASELINE = "static"
IMAGES = 200
PER_GENERATION = 4
SEED_PREDICTION_S = 0.2
PRESET = "desktop"  # the ratio's; Lighthouse's default (mobile) runs too, for the extra
ACCESSIBILITY_GOAL = 1.0
LCP_GOAL_MS = 2500.0
CLS_GOAL = 0.1
FIRST_LOAD_JS_GOAL_KB = 200.0
LIGHTHOUSE_TIMEOUT_S = 240.0
LIGHTHOUSE_CLI = WEB / "node_modules" / "lighthouse" / "cli" / "index.js"
STATIC_PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="A static page: the benchmark's baseline.">
<title>Baseline</title></head>
<body><main><h1>A static page</h1><p>Nothing to load but this text.</p></main></body>
</html>
"""
NOTES = (
    "Lighthouse with the desktop preset (simulated throttling: 40 ms RTT, 10 Mbit/s, no CPU "
    "slow-down) on Debian's Chromium, offline (everything on localhost). Chromium is started "
    "by the benchmark with Lighthouse's own default flags plus --headless=new --no-sandbox "
    "--disable-gpu --disable-background-networking, and the signed-in pages get the app's "
    "__session cookie (a dev-issuer token for the web origin) set in the browser before "
    "Lighthouse connects (--port). An --extra-headers Cookie would reach the app's server and "
    "the gateway (which reads __session too) but not document.cookie, from which the app takes "
    "its session: the page would run signed out in its own state (no Authorization header, no "
    "live event stream), not as a signed-in user loads it. Medians over rounds, metric by "
    "metric; runs_warned counts runs where the page never went quiet within Lighthouse's 45 s "
    "(the metrics still stand); benchmark_index is Lighthouse's measure of the CPU's speed at "
    "the time (the static page's runs). first_load_js_kb: the route's "
    "rootMainFiles (server/app/<route>/page/build-manifest.json) and the entry chunks of its "
    "layouts and page (page_client-reference-manifest.js), each gzipped (level 9), summed; "
    "polyfills (nomodule) left out. js_transferred_kb: the scripts' transfer sizes in "
    "Lighthouse's network log (next start compresses). The machine's 2 cores are shared with "
    "every service, Postgres, RabbitMQ and SeaweedFS."
)


# --- first-load JS from the build --------------------------------------------------------------

_ENTRIES_JS = """
const fs = require("fs"), path = require("path");
const [nextDir, ...keys] = process.argv.slice(1);
globalThis.self = globalThis;
const out = {};
for (const key of keys) {
  globalThis.__RSC_MANIFEST = {};
  require(path.join(nextDir, "server", "app", key + "_client-reference-manifest.js"));
  out[key] = globalThis.__RSC_MANIFEST[key]?.entryJSFiles ?? null;
}
process.stdout.write(JSON.stringify(out));
"""


def _gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def first_load_js(next_dir: Path = WEB / ".next") -> dict[str, dict[str, Any]]:
    """Each app route's first-load JavaScript: {route: {kb, raw_kb, files}} (kB = 1000 bytes)."""
    routes: dict[str, str] = json.loads((next_dir / "app-path-routes-manifest.json").read_text())
    pages = {k: r for k, r in routes.items() if k.endswith("/page") and not r.startswith("/_")}
    entries = json.loads(
        subprocess.run(
            [node_binary(), "-e", _ENTRIES_JS, str(next_dir), *pages],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    out: dict[str, dict[str, Any]] = {}
    for key, route in sorted(pages.items(), key=lambda kv: kv[1]):
        build = json.loads(
            (next_dir / "server" / "app" / key.lstrip("/") / "build-manifest.json").read_text()
        )
        files = list(build["rootMainFiles"])
        for entry, chunks in (entries.get(key) or {}).items():
            if "/builtin/" not in entry:  # Next's own global-error boundary, loaded on errors
                files += chunks
        unique = list(dict.fromkeys(files))
        out[route] = {
            "kb": round(sum(_gzipped(next_dir / f) for f in unique) / 1000, 1),
            "raw_kb": round(sum((next_dir / f).stat().st_size for f in unique) / 1000, 1),
            "files": len(unique),
        }
    return out


# --- Chromium and Lighthouse ---------------------------------------------------------------------


def chrome_flags() -> list[str]:
    """What Lighthouse's own launcher passes Chrome (chrome-launcher's defaults), plus ours."""
    defaults = subprocess.run(
        [
            node_binary(),
            "--input-type=module",
            "-e",
            "import * as cl from 'chrome-launcher'; "
            "console.log(JSON.stringify(cl.Launcher.defaultFlags()))",
        ],
        cwd=WEB,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return list(dict.fromkeys([*json.loads(defaults), *CHROME_FLAGS]))


@contextlib.contextmanager
def chromium(flags: list[str]) -> Iterator[int]:
    """A fresh Chromium (its own empty profile) with its DevTools port; stopped afterwards."""
    port = free_port()
    profile = Path(tempfile.mkdtemp(prefix="visiona-bench-chromium-"))
    proc = subprocess.Popen(
        [
            CHROMIUM,
            *flags,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=2).is_success:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"Chromium did not open its DevTools port (exit {proc.poll()})")
            time.sleep(0.1)
        yield port
    finally:
        stop_process(proc, 10.0)
        shutil.rmtree(profile, ignore_errors=True)


def set_cookies(port: int, cookies: list[dict[str, Any]]) -> None:
    """``Storage.setCookies`` on the browser's default context, over the DevTools protocol."""
    version = httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=5).json()
    with connect(version["webSocketDebuggerUrl"], max_size=None) as ws:
        ws.send(
            json.dumps({"id": 1, "method": "Storage.setCookies", "params": {"cookies": cookies}})
        )
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message.get("id") == 1:
                break
    if "error" in message:
        raise BenchError(f"Storage.setCookies: {message['error']}")


def lighthouse(
    url: str, flags: list[str], cookie: dict[str, Any] | None, out: Path, *, mobile: bool = False
) -> dict[str, Any]:
    """One Lighthouse run on a fresh Chromium; the report. Desktop preset: performance and
    accessibility; ``mobile`` (Lighthouse's default settings): performance only."""
    settings = (
        ["--only-categories=performance"]
        if mobile
        else [f"--preset={PRESET}", "--only-categories=performance,accessibility"]
    )
    with chromium(flags) as port:
        if cookie is not None:
            set_cookies(port, [cookie])
        ran = subprocess.run(
            [
                node_binary(),
                str(LIGHTHOUSE_CLI),
                url,
                f"--port={port}",
                *settings,
                "--output=json",
                f"--output-path={out}",
                "--quiet",
                "--no-enable-error-reporting",
            ],
            cwd=WEB,
            env=os.environ | {"CHROME_PATH": CHROMIUM},
            capture_output=True,
            text=True,
            timeout=LIGHTHOUSE_TIMEOUT_S,
        )
    # A page Lighthouse could not load (e.g. a 404) still gets a report, with runtimeError.
    if not out.exists():
        raise BenchError(f"lighthouse {url} exited {ran.returncode}: {ran.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def _numeric(report: dict[str, Any], audit: str) -> float | None:
    value = report["audits"].get(audit, {}).get("numericValue")
    return None if value is None else float(value)


def figures(report: dict[str, Any], api_port: int) -> dict[str, Any]:
    """What a report says about its page (scores 0 to 1, times in ms)."""
    error = report.get("runtimeError")
    if error:
        return {"error": f"{error.get('code')}: {error.get('message', '')[:300]}"}
    categories = report["categories"]
    requests = (report["audits"].get("network-requests", {}).get("details") or {}).get("items", [])
    scripts = [r for r in requests if r.get("resourceType") == "Script"]
    api = [r for r in requests if f":{api_port}/v1/" in r.get("url", "")]
    images = [r for r in requests if r.get("resourceType") == "Image"]
    a11y = categories.get("accessibility")
    failed_a11y = [
        ref["id"]
        for ref in (a11y or {}).get("auditRefs", [])
        if ref.get("weight", 0) > 0 and report["audits"][ref["id"]].get("score") == 0
    ]
    return {
        "performance": categories["performance"]["score"],
        **({"accessibility": a11y["score"]} if a11y else {}),
        "lcp_ms": _numeric(report, "largest-contentful-paint"),
        "cls": _numeric(report, "cumulative-layout-shift"),
        "tbt_ms": _numeric(report, "total-blocking-time"),
        "fcp_ms": _numeric(report, "first-contentful-paint"),
        "speed_index_ms": _numeric(report, "speed-index"),
        "js_transferred_kb": round(sum(r.get("transferSize", 0) for r in scripts) / 1000, 1),
        "images_loaded": len(images),
        "api_statuses": sorted({int(r.get("statusCode", 0)) for r in api}),
        "accessibility_failures": failed_a11y,
        "final_url": report.get("finalDisplayedUrl"),
        # Lighthouse's own measure of this machine's CPU speed at the time (higher is faster).
        "benchmark_index": (report.get("environment") or {}).get("benchmarkIndex"),
        "warnings": [str(w)[:200] for w in report.get("runWarnings", [])],
    }


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each metric's median over the rounds; the lists (failures, statuses) of the last run."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"], "rounds": len(runs)}
    out: dict[str, Any] = {}
    for key, value in ok[-1].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [float(r[key]) for r in ok if r.get(key) is not None]
            digits = 3 if key in ("performance", "accessibility", "cls") else 0
            out[key] = round(statistics.median(values), digits)
        else:
            out[key] = value
    out["performance_by_round"] = [r["performance"] for r in ok]
    # Runs where the page never went quiet within Lighthouse's 45 s (its metrics still stand).
    out["runs_warned"] = sum(1 for r in ok if r["warnings"])
    out["lcp_ms_by_round"] = [round(r["lcp_ms"]) for r in ok]
    if len(ok) < len(runs):
        out["errors"] = [r["error"] for r in runs if "error" in r]
    return out


# --- the static baseline ---------------------------------------------------------------------------


class _Static(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(STATIC_PAGE)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(STATIC_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def static_page() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Static)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --- seeding --------------------------------------------------------------------------------------


async def seed(web: WebPlatform) -> tuple[WebUser, dict[str, Any]]:
    """A user with a trained model and ``IMAGES`` images, all made through the gateway."""
    await web.stack.replicate_config(
        start_delay_s=0.0, training_duration_s=1.0, prediction_duration_s=SEED_PREDICTION_S
    )
    user = await ready_web_user(web, "vitals")
    started = time.perf_counter()
    try:
        for _ in range(IMAGES // PER_GENERATION):
            await generate(user, 0.05, body={"num_outputs": PER_GENERATION})
        stored, cursor = 0, None
        while True:
            page = await user.call(
                "GET",
                "/v1/images",
                200,
                params={"limit": 100} | ({"cursor": cursor} if cursor else {}),
            )
            stored += len(page["images"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    finally:
        await user.client.aclose()
    if stored != IMAGES:
        raise BenchError(f"the seeded user has {stored} images, not {IMAGES}")
    return user, {
        **user.setup_s,
        "images_s": round(time.perf_counter() - started, 1),
        "images": stored,
        "prediction_s": SEED_PREDICTION_S,
    }


# --- the benchmark ----------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    lighthouse_version = json.loads((WEB / "node_modules/lighthouse/package.json").read_text())
    chromium_version = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"lighthouse": lighthouse_version["version"], "chromium": chromium_version}


def _measure(web: WebPlatform, rounds: int) -> Result:
    load_at_start = load_average()
    user, seeding = asyncio.run(seed(web))
    cookie = session_cookie(web, user)
    flags = chrome_flags()
    api_port = web.stack.cfg.ports["gateway"]
    bundles = first_load_js()
    names = [*PAGES, BASELINE]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    mobile_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    started = time.perf_counter()
    with static_page() as static_url, tempfile.TemporaryDirectory() as tmp:
        urls = {name: web.origin + path for name, (path, _) in PAGES.items()}
        urls[BASELINE] = static_url
        for i in range(rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                signed_in = PAGES.get(name, ("", False))[1]
                for on_mobile, into in ((False, runs), (True, mobile_runs)):
                    report = lighthouse(
                        urls[name],
                        flags,
                        cookie if signed_in else None,
                        Path(tmp) / f"{name}-{i}-{int(on_mobile)}.json",
                        mobile=on_mobile,
                    )
                    into[name].append(figures(report, api_port))
    audits_s = time.perf_counter() - started

    pages = {name: median_figures(runs[name]) for name in PAGES}
    baseline_page = median_figures(runs[BASELINE])
    mobile = {
        name: {
            k: v
            for k, v in median_figures(mobile_runs[name]).items()
            if k in ("performance", "lcp_ms", "tbt_ms", "cls", "fcp_ms", "error")
        }
        for name in names
    }
    audited = {name: p for name, p in pages.items() if "error" not in p}
    if not audited:
        raise BenchError(f"no page could be audited: {pages}")
    for name, path_signed_in in PAGES.items():
        page = pages[name]
        if name in audited and path_signed_in[1]:
            statuses = page.get("api_statuses", [])
            if 200 not in statuses or 401 in statuses:
                raise BenchError(f"{name} was not rendered signed in (API statuses {statuses})")
    worst = min(audited, key=lambda n: audited[n]["performance"])
    worst_lcp = [float(r["lcp_ms"]) for r in runs[worst] if "error" not in r]
    base_lcp = [float(r["lcp_ms"]) for r in runs[BASELINE] if "error" not in r]
    if not base_lcp:
        raise BenchError(f"the static baseline could not be audited: {baseline_page}")
    routes = {path: bundles.get(path, {}).get("kb") for path, _ in PAGES.values()}
    measured_routes = {r: kb for r, kb in routes.items() if kb is not None}
    first_load_max = max(measured_routes.values()) if measured_routes else None
    accessibility_min = min(p["accessibility"] for p in audited.values())
    lcp_max = max(p["lcp_ms"] for p in audited.values())
    cls_max = max(p["cls"] for p in audited.values())
    other_goals = {
        f"every page audited ({', '.join(PAGES)})": len(audited) == len(PAGES),
        f"accessibility >= {ACCESSIBILITY_GOAL}": accessibility_min >= ACCESSIBILITY_GOAL,
        f"LCP <= {LCP_GOAL_MS:.0f} ms": lcp_max <= LCP_GOAL_MS,
        f"CLS <= {CLS_GOAL}": cls_max <= CLS_GOAL,
        f"first-load JS <= {FIRST_LOAD_JS_GOAL_KB:.0f} kB": first_load_max is not None
        and len(measured_routes) == len(routes)
        and first_load_max <= FIRST_LOAD_JS_GOAL_KB,
    }
    return Result(
        name=NAME,
        ratio=float(audited[worst]["performance"]),
        goal=GOAL,
        candidate=Measurement(
            p50_ms=statistics.median(worst_lcp),
            p99_ms=percentile(worst_lcp, 99),
            rps=1000 / statistics.median(worst_lcp),
        ),
        baseline=Measurement(
            p50_ms=statistics.median(base_lcp),
            p99_ms=percentile(base_lcp, 99),
            rps=1000 / statistics.median(base_lcp),
        ),
        rounds=rounds,
        extra={
            "worst_page": worst,
            **{f"performance_{n}": p.get("performance") for n, p in pages.items()},
            "accessibility": {n: p.get("accessibility") for n, p in pages.items()},
            "lcp_ms": {n: p.get("lcp_ms") for n, p in pages.items()},
            "cls": {n: p.get("cls") for n, p in pages.items()},
            "tbt_ms": {n: p.get("tbt_ms") for n, p in pages.items()},
            "first_load_js_kb": routes,
            "first_load_js_max_kb": first_load_max,
            "accessibility_min": accessibility_min,
            "lcp_max_ms": lcp_max,
            "cls_max": cls_max,
            "baseline_performance": baseline_page.get("performance"),
            "baseline_lcp_ms": baseline_page.get("lcp_ms"),
            "benchmark_index": baseline_page.get("benchmark_index"),
            "mobile_performance_min": min(
                (m["performance"] for n, m in mobile.items() if n in PAGES and "performance" in m),
                default=None,
            ),
            "pages": pages,
            "baseline_page": baseline_page,
            "mobile": mobile,
            "first_load_js_all_routes": bundles,
            "goals": {
                "performance": GOAL,
                "accessibility": f">= {ACCESSIBILITY_GOAL}",
                "lcp_ms": f"<= {LCP_GOAL_MS:.0f}",
                "cls": f"<= {CLS_GOAL}",
                "first_load_js_kb": f"<= {FIRST_LOAD_JS_GOAL_KB:.0f}",
            },
            "preset": PRESET,
            "chrome_flags": list(CHROME_FLAGS),
            **_versions(),
            "build_id": web.build_id,
            "seeding": seeding,
            "load_avg_1m_at_start": load_at_start,
            "audits_s": round(audits_s, 1),
            "notes": NOTES,
        },
        headline=(
            *(f"performance_{n}" for n in PAGES),
            "accessibility_min",
            "lcp_max_ms",
            "cls_max",
            "first_load_js_max_kb",
            "baseline_performance",
            "mobile_performance_min",
        ),
        other_goals=other_goals,
    )


def run(rounds: int) -> Result:
    with web_platform("vitals") as web:
        return _measure(web, rounds)
