"""The web_vitals benchmark's reading of a Next build and of Lighthouse reports
(bench/web_vitals.py), on made-up files: which scripts count as a route's first load, what a
report says about its page, and the medians over rounds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from bench.web_vitals import figures, first_load_js, median_figures

API_PORT = 8000


def fake_build(root: Path) -> Path:
    """A .next folder with two app routes (/ and /dashboard) and Next's own /_not-found."""
    next_dir = root / ".next"
    chunks = next_dir / "static" / "chunks"
    chunks.mkdir(parents=True)
    sizes = {"main.js": 3000, "layout.js": 2000, "page.js": 1000, "dash.js": 4000, "err.js": 9000}
    for name, size in sizes.items():
        (chunks / name).write_bytes(bytes(range(256)) * (size // 256))
    (next_dir / "app-path-routes-manifest.json").write_text(
        json.dumps(
            {
                "/page": "/",
                "/(app)/dashboard/page": "/dashboard",
                "/_not-found/page": "/_not-found",
                "/api/dev/session/route": "/api/dev/session",
            }
        )
    )
    entries = {
        "/page": {
            "[project]/app/layout": ["static/chunks/layout.js"],
            "[project]/node_modules/next/dist/client/components/builtin/global-error": [
                "static/chunks/err.js"
            ],
            "[project]/app/page": ["static/chunks/layout.js", "static/chunks/page.js"],
        },
        "/(app)/dashboard/page": {
            "[project]/app/layout": ["static/chunks/layout.js"],
            "[project]/app/(app)/dashboard/page": ["static/chunks/dash.js"],
        },
    }
    for key, entry in entries.items():
        folder = next_dir / "server" / "app" / key.lstrip("/")
        folder.mkdir(parents=True)
        (folder / "build-manifest.json").write_text(
            json.dumps({"rootMainFiles": ["static/chunks/main.js"], "polyfillFiles": ["x.js"]})
        )
        manifest = {"entryJSFiles": entry, "entryCSSFiles": {}}
        (folder.parent / f"{folder.name}_client-reference-manifest.js").write_text(
            f"globalThis.__RSC_MANIFEST = globalThis.__RSC_MANIFEST || {{}};\n"
            f"globalThis.__RSC_MANIFEST[{json.dumps(key)}] = {json.dumps(manifest)};\n"
        )
    return next_dir


def gz(next_dir: Path, *names: str) -> float:
    chunks = next_dir / "static" / "chunks"
    return round(sum(len(gzip.compress((chunks / n).read_bytes(), 9)) for n in names) / 1000, 1)


def test_first_load_js_counts_the_root_files_and_the_routes_entries_once(tmp_path: Path) -> None:
    next_dir = fake_build(tmp_path)

    routes = first_load_js(next_dir)

    assert set(routes) == {"/", "/dashboard"}  # pages only, not Next's own nor route handlers
    assert routes["/"]["files"] == 3  # main, layout (once), page; not the global-error chunk
    assert routes["/"]["kb"] == gz(next_dir, "main.js", "layout.js", "page.js")
    assert routes["/"]["raw_kb"] == round((2816 + 1792 + 768) / 1000, 1)
    assert routes["/dashboard"]["kb"] == gz(next_dir, "main.js", "layout.js", "dash.js")


def report(**overrides: Any) -> dict[str, Any]:
    audits: dict[str, Any] = {
        "largest-contentful-paint": {"numericValue": 1200.0},
        "cumulative-layout-shift": {"numericValue": 0.02},
        "total-blocking-time": {"numericValue": 150.0},
        "first-contentful-paint": {"numericValue": 300.0},
        "speed-index": {"numericValue": 500.0},
        "color-contrast": {"score": 0},
        "image-alt": {"score": 1},
        "network-requests": {
            "details": {
                "items": [
                    {
                        "url": "http://localhost:3999/x.js",
                        "resourceType": "Script",
                        "transferSize": 2500,
                    },
                    {"url": f"http://localhost:{API_PORT}/v1/images", "statusCode": 200},
                    {"url": f"http://localhost:{API_PORT}/v1/me", "statusCode": 200},
                    {"url": "http://127.0.0.1:9/a.webp", "resourceType": "Image"},
                ]
            }
        },
    }
    return {
        "categories": {
            "performance": {"score": 0.8},
            "accessibility": {
                "score": 0.95,
                "auditRefs": [
                    {"id": "color-contrast", "weight": 7},
                    {"id": "image-alt", "weight": 10},
                ],
            },
        },
        "audits": audits,
        "finalDisplayedUrl": "http://localhost:3999/dashboard",
        "environment": {"benchmarkIndex": 2000},
        "runWarnings": [],
    } | overrides


def test_figures_read_scores_metrics_and_the_pages_requests() -> None:
    got = figures(report(), API_PORT)

    assert got["performance"] == 0.8 and got["accessibility"] == 0.95
    assert (got["lcp_ms"], got["cls"], got["tbt_ms"]) == (1200.0, 0.02, 150.0)
    assert got["js_transferred_kb"] == 2.5
    assert got["api_statuses"] == [200]
    assert got["images_loaded"] == 1
    assert got["accessibility_failures"] == ["color-contrast"]
    assert got["benchmark_index"] == 2000


def test_a_page_lighthouse_could_not_load_is_an_error_not_a_score() -> None:
    got = figures(
        report(runtimeError={"code": "ERRORED_DOCUMENT_REQUEST", "message": "(Status code: 404)"}),
        API_PORT,
    )

    assert got == {"error": "ERRORED_DOCUMENT_REQUEST: (Status code: 404)"}


def test_a_mobile_report_has_no_accessibility() -> None:
    mobile = report()
    del mobile["categories"]["accessibility"]

    got = figures(mobile, API_PORT)

    assert "accessibility" not in got and got["accessibility_failures"] == []


def test_medians_are_taken_metric_by_metric_and_slow_runs_counted() -> None:
    runs = [
        figures(report(), API_PORT),
        figures(report(runWarnings=["The page loaded too slowly"]), API_PORT),
        figures(report(), API_PORT),
    ]
    runs[0]["performance"], runs[1]["performance"], runs[2]["performance"] = 0.5, 0.9, 0.7
    runs[0]["lcp_ms"], runs[1]["lcp_ms"], runs[2]["lcp_ms"] = 900.0, 3000.0, 1000.0

    got = median_figures(runs)

    assert got["performance"] == 0.7 and got["lcp_ms"] == 1000.0
    assert got["performance_by_round"] == [0.5, 0.9, 0.7]
    assert got["runs_warned"] == 1


def test_medians_of_a_page_never_audited_keep_its_error() -> None:
    got = median_figures([{"error": "ERRORED_DOCUMENT_REQUEST: 404"}] * 2)

    assert got == {"error": "ERRORED_DOCUMENT_REQUEST: 404", "rounds": 2}
