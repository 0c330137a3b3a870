"""``visiona``: sign in, upload photos, train a model, generate images, check credits.

Everything goes through the gateway's REST API (``VISIONA_GATEWAY``, default
``http://127.0.0.1:8000``) with the session saved by ``visiona login``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from visiona.cli.admin import admin_app
from visiona.cli.api import PHOTO_TYPES, ApiError, Gateway
from visiona.cli.config import DEFAULT_DEV_ISSUER, Session

app = typer.Typer(no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
photos_app = typer.Typer(no_args_is_help=True, help="Your training photos.")
app.add_typer(photos_app, name="photos")
app.add_typer(admin_app, name="admin")
console = Console()


def _gateway() -> Gateway:
    session = Session.load()
    if not session.token:
        console.print("[red]Not signed in.[/] Run [bold]visiona login --dev USER[/] first.")
        raise typer.Exit(2)
    return Gateway(session.gateway, session.token)


def _fail(exc: ApiError) -> typer.Exit:
    console.print(f"[red]{exc.message}[/] [dim]({exc.code}, HTTP {exc.status})[/]")
    return typer.Exit(1)


def _get(path: str, **kwargs: Any) -> Any:
    """``GET path`` as the signed-in user; an API error ends the command with its message."""
    with _gateway() as gw:
        try:
            return gw.call("GET", path, **kwargs)
        except ApiError as exc:
            raise _fail(exc) from None


def _require_success(kind: str, job: dict[str, Any]) -> None:
    """Unless ``job`` succeeded, end the command (exit 1) saying how it ended and why."""
    if job["status"] != "succeeded":
        failure = job.get("failure") or {}
        console.print(f"[red]{kind} {job['status']}: {failure.get('message') or ''}[/]")
        raise typer.Exit(1)


@app.command()
def login(
    dev: Annotated[str, typer.Option("--dev", help="Sign in as this local dev user")],
    gateway: Annotated[str | None, typer.Option(help="The gateway's URL")] = None,
    issuer: Annotated[
        str, typer.Option(help="The local dev issuer", envvar="VISIONA_DEV_ISSUER")
    ] = DEFAULT_DEV_ISSUER,
    role: Annotated[
        str | None,
        typer.Option(help="A role for the session token's metadata.role (e.g. operator)"),
    ] = None,
) -> None:
    """Sign in as a local dev user (the dev issuer of `make up` signs the session token)."""
    wanted: dict[str, Any] = {"user": dev, "ttl_s": 12 * 3600}
    if role:
        wanted["role"] = role
    response = httpx.post(f"{issuer}/_dev/tokens", json=wanted)
    if response.status_code != 200:
        console.print(f"[red]The dev issuer at {issuer} refused: {response.text}[/]")
        raise typer.Exit(1)
    session = Session.load()
    session.token, session.user = response.json()["token"], dev
    if gateway:
        session.gateway = gateway
    path = session.save()
    console.print(f"Signed in as [bold]{dev}[/] ({session.gateway}); session in {path}")


@photos_app.command("upload")
def photos_upload(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, readable=True)],
    flag_faces: Annotated[
        bool, typer.Option(help="Accept photos without exactly one face, with a warning")
    ] = False,
) -> None:
    """Upload every photo in DIRECTORY (JPEG, PNG, WebP, HEIC) and show each verdict."""
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in PHOTO_TYPES)
    if not paths:
        console.print(f"[yellow]No photos in {directory}[/]")
        raise typer.Exit(1)
    table = Table("photo", "verdict", "reasons", "id")
    details: list[str] = []
    with (
        _gateway() as gw,
        Progress(
            TextColumn("[bold]uploading"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress,
    ):
        task = progress.add_task("upload", total=len(paths))

        def done(path: Path, verdict: dict[str, Any]) -> None:
            progress.advance(task)
            colour = {"accepted": "green", "rejected": "red"}.get(verdict["status"], "yellow")
            reasons = ", ".join(verdict.get("reasons") or [])
            table.add_row(path.name, f"[{colour}]{verdict['status']}[/]", reasons, verdict["id"])
            if verdict.get("detail"):
                details.append(f"{path.name}: {verdict['detail']}")

        try:
            verdicts = gw.upload_photos(
                paths, face_policy="flag" if flag_faces else "require", progress=done
            )
        except ApiError as exc:
            raise _fail(exc) from None
    console.print(table)
    for line in details:
        console.print(line, markup=False, highlight=False)
    accepted = sum(v["status"] != "rejected" for v in verdicts)
    console.print(f"{accepted} of {len(verdicts)} accepted")


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="A name for the model")],
    preset: Annotated[str, typer.Option(help="fast, balanced or quality")] = "balanced",
    trigger_word: Annotated[str | None, typer.Option(help="Your own trigger word")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the training until it ends")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most")] = 3600,
) -> None:
    """Train a model on your accepted photos (the newest 30)."""
    with _gateway() as gw:
        try:
            photo_ids = gw.accepted_photo_ids(30)
            body: dict[str, Any] = {"name": name, "photo_ids": photo_ids, "preset": preset}
            if trigger_word:
                body["trigger_word"] = trigger_word
            model = gw.call("POST", "/v1/models", json=body)
            console.print(
                f"Model [bold]{model['id']}[/] on {model['photo_count']} photos, "
                f"trigger word [bold]{model['trigger_word']}[/]"
            )
            if not wait:
                return
            model = gw.wait_for(
                f"/v1/models/{model['id']}",
                timeout_s=timeout,
                on_change=lambda m: console.print(
                    f"  {m['status']}" + (f" {m['progress']:.0%}" if m["progress"] else "")
                ),
            )
        except ApiError as exc:
            raise _fail(exc) from None
    _require_success("Training", model)
    console.print(f"[green]Ready:[/] {model['id']} ({model['version']})")


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the models as JSON")] = False,
) -> None:
    """Your models, newest first."""
    page = _get("/v1/models", params={"limit": 100})
    if as_json:
        print(json.dumps(page["models"], indent=2))
        return
    table = Table("id", "name", "status", "trigger word", "created")
    for m in page["models"]:
        table.add_row(m["id"], m["name"], m["status"], m["trigger_word"], m["created_at"][:19])
    console.print(table)


@app.command()
def generate(
    model: Annotated[str, typer.Argument(help="A model id (see `visiona models`)")],
    prompt: Annotated[str, typer.Argument(help="What to make")],
    n: Annotated[int, typer.Option("--n", min=1, max=4, help="Images (1-4)")] = 1,
    enhance: Annotated[bool, typer.Option(help="Let the LLM enrich the prompt")] = False,
    pack: Annotated[str | None, typer.Option(help="A style pack id")] = None,
    aspect_ratio: Annotated[str, typer.Option(help="e.g. 1:1, 3:2, 9:16")] = "1:1",
    seed: Annotated[int | None, typer.Option(help="A seed, for repeatable results")] = None,
    out: Annotated[Path, typer.Option(help="Where to save the images")] = Path("visiona-images"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most")] = 600,
) -> None:
    """Generate images of you with MODEL, wait for them, and download them to --out."""
    body: dict[str, Any] = {
        "model_id": model,
        "prompt": prompt,
        "num_outputs": n,
        "enhance": enhance,
        "aspect_ratio": aspect_ratio,
    }
    if pack:
        body["pack"] = pack
    if seed is not None:
        body["seed"] = seed
    with _gateway() as gw:
        try:
            gen = gw.call("POST", "/v1/generations", json=body)
            if gen["degraded"]:
                console.print(
                    "[yellow]The prompt enhancer is unavailable: your own prompt is used.[/]"
                )
            console.print(f"Generation [bold]{gen['id']}[/]: {gen['final_prompt']}")
            gen = gw.wait_for(
                f"/v1/generations/{gen['id']}",
                timeout_s=timeout,
                on_change=lambda g: console.print(f"  {g['status']}"),
            )
        except ApiError as exc:
            raise _fail(exc) from None
        _require_success("Generation", gen)
        out.mkdir(parents=True, exist_ok=True)
        for image in gen["images"]:
            ext = image["content_type"].split("/")[-1].replace("jpeg", "jpg")
            path = gw.download(image["url"], out / f"{gen['id']}-{image['index']}.{ext}")
            console.print(f"  saved [bold]{path}[/] ({image['width']}x{image['height']})")
    console.print(f"[green]{gen['delivered']} image(s)[/] in {out.resolve()}")


@app.command()
def balance(
    as_json: Annotated[bool, typer.Option("--json", help="Print the balance as JSON")] = False,
) -> None:
    """Your credits."""
    b = _get("/v1/billing/balance")
    if as_json:
        print(json.dumps(b))
        return
    console.print(f"{b['available']} credits available ({b['balance']} owned, {b['held']} held)")


@app.command()
def buy(
    pack: Annotated[str, typer.Argument(help="A credit pack id, e.g. starter or pro")],
    dev_pay: Annotated[
        bool, typer.Option(help="Pay on the local Stripe emulator's page at once (dev only)")
    ] = False,
) -> None:
    """Buy a credit pack: prints Stripe's checkout page to open in a browser."""
    with _gateway() as gw:
        try:
            before = gw.call("GET", "/v1/billing/balance")["balance"]
            session = gw.call(
                "POST", "/v1/billing/checkout", json={"kind": "pack", "item_id": pack}
            )
        except ApiError as exc:
            raise _fail(exc) from None
        if not dev_pay:
            console.print(f"Pay here: {session['url']}")
            return
        paid = gw.plain.post(
            f"{session['url']}/pay",
            json={"outcome": "paid"},
            headers={"Accept": "application/json"},
        )
        if paid.status_code != 200:
            console.print(f"[red]The payment page refused: {paid.text}[/]")
            raise typer.Exit(1)
        # Credits come with Stripe's webhook, a moment later: wait for them (a while).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                now = gw.call("GET", "/v1/billing/balance")
            except ApiError as exc:
                raise _fail(exc) from None
            if now["balance"] > before:
                console.print(
                    f"Paid {pack}: {now['balance'] - before} credits added, "
                    f"{now['available']} available"
                )
                return
            time.sleep(0.5)
        console.print(f"Paid {pack}; credits arrive with Stripe's webhook.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
