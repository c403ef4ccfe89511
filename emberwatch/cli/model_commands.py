"""Model commands: ``models`` (the registry view), ``promote``/``rollback``/``approve``/``reject`` (operator
commands to the gatekeeper), ``train`` (a training request) and ``predict`` (one image through Triton).
The work is in ``emberwatch.operations``; this module parses, calls and prints.

A model line learns from one imagery product (Mapbox, Sentinel-2 SWIR, Sentinel-2 true colour) and
registers its own model (``model_name_for``); ``--product`` picks a line's model, Mapbox by default."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from emberwatch.cli.consoles import console, out
from emberwatch.cli.render import markup_safe, models_table, plain, prediction_table, triton_summary
from emberwatch.common.config import get_settings
from emberwatch.contracts.products import MAPBOX, PRODUCTS, model_name_for, product_title, triton_model_for

Product = StrEnum("Product", {p: p for p in PRODUCTS})  # the --product choices, as the events spell them


def models(limit: int = typer.Option(10, help="How many recent versions to list per model line."),
           decisions: int = typer.Option(5, help="How many of the latest decisions to show per model line."),
           product: Product | None = typer.Option(
               None, "--product", help="Only the model line of this imagery product (default: the Mapbox line and "
                                       "every other line with versions).")) -> None:
    """Show each model line's champion and challengers: the product the model sees, MLflow versions,
    aliases, metrics, what Triton has loaded, and the latest decisions (from MLflow, Triton and Kafka;
    nothing local is read). Lines other than Mapbox register as <EMBERWATCH_MODEL_NAME>-<product>."""
    import asyncio

    from emberwatch.common.model_registry import use_mlflow_credentials
    from emberwatch.ml.settings import MLSettings
    from emberwatch.operations.send_command import describe
    from emberwatch.operations.show_models import latest_decisions, registry_versions, triton_view

    settings = MLSettings()
    use_mlflow_credentials(settings)
    asked = [product.value] if product else list(PRODUCTS)
    lines: dict[str, list] = {}  # product -> its model's versions
    try:
        for p in asked:
            rows = registry_versions(settings.mlflow_tracking_uri, model_name_for(settings.model_name, p), limit)
            if rows or p == MAPBOX or product:
                lines[p] = rows
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types when unreachable
        console.print(f"[red]MLflow at {markup_safe(settings.mlflow_tracking_uri)} did not answer:[/] "
                      f"{markup_safe(exc)}")
        raise typer.Exit(1) from None
    for p, rows in lines.items():
        # Triton is asked of the Mapbox line's heads; the other lines' serving names are the gatekeeper's
        triton = triton_view(settings.triton_url, [r.version for r in rows]) if p == MAPBOX else None
        out.print(models_table(model_name_for(settings.model_name, p), rows, triton, product=p))
        if triton is not None and triton.error:
            console.print(f"[yellow]Triton at {markup_safe(triton.url)} did not answer:[/] "
                          f"{markup_safe(triton.error)}")
        elif triton is not None:
            out.print(triton_summary(triton))
    if decisions <= 0:
        return
    for p in lines:
        try:
            latest = asyncio.run(latest_decisions(settings, model_name_for(settings.model_name, p), limit=decisions))
        except Exception as exc:  # noqa: BLE001 - the registry view stands without the decisions
            console.print(f"[yellow]decisions unavailable (Kafka at {settings.kafka_bootstrap_servers}):[/] "
                          f"{markup_safe(exc)}")
            return
        seen = product_title(p)
        out.print(f"Latest decisions ({seen}):" if latest else f"No decisions yet ({seen}).", highlight=False)
        for d in latest:
            out.print(plain(f"  {d.occurred_at.strftime('%Y-%m-%d %H:%M:%S')} {describe(d)}"), highlight=False)


def commanded_model(base: str, model: str | None, product: str | None) -> str:
    """The model a command is about: ``--model`` as given, else the ``--product`` line's model of
    ``base`` (the Mapbox line's, ``base`` itself, when neither is given)."""
    if model and product:
        raise typer.BadParameter("give --model or --product, not both")
    return model or model_name_for(base, product or MAPBOX)


def _command(kind: str, *, version: str | None, reason: str, wait_s: float, model: str | None,
             product: str | None) -> None:
    """Send one command to the gatekeeper, wait for its answer, print it. Exit 1 when it was refused,
    2 when it could not be sent or no answer came."""
    import asyncio

    from pydantic import ValidationError
    from rich.markup import escape

    from emberwatch.ml.settings import MLSettings
    from emberwatch.operations.send_command import (
        CommandError,
        cli_signer,
        cli_user,
        describe,
        model_command,
        send_command,
    )
    from emberwatch.security.command_keys import SigningKeyMissing

    settings = MLSettings()
    model_name = commanded_model(settings.model_name, model, product)
    try:
        signer = cli_signer(settings)  # the person's own key: operator:<name>, asking as cli:<name>
    except SigningKeyMissing as exc:
        console.print(f"[red]{kind}:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    try:
        command = model_command(kind, model_name, requested_by=cli_user(signer), signer=signer,
                                version=version, reason=reason, wait_s=wait_s)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    try:
        with console.status(f"{kind}: waiting up to {wait_s:g}s for the gatekeeper's answer "
                            f"(command {command.event_id})…"):
            decision = asyncio.run(send_command(settings, command, wait_s=wait_s))
    except CommandError as exc:
        console.print(f"[red]{kind}:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"decision {decision.event_id} answers command {command.event_id}", highlight=False)
    if decision.refused:
        console.print(f"[red]{kind} refused by the gatekeeper:[/] {markup_safe(decision.reason)}", highlight=False)
        raise typer.Exit(1)
    out.print(plain(describe(decision)), highlight=False)


_REASON = typer.Option("", "--reason", help="Why (kept with the decision and in MLflow).")
_WAIT = typer.Option(60.0, "--wait-s", help="How long to wait for the gatekeeper's answer.")
_MODEL = typer.Option(None, "--model", help="Registered model (default: the --product line's model).")
_PRODUCT = typer.Option(None, "--product", help="The imagery product whose model line the command is about; "
                                                "default mapbox, whose model is EMBERWATCH_MODEL_NAME (another "
                                                "line's: <that name>-<product>).")


def promote(version: str = typer.Argument(..., help="MLflow model version to serve as champion."),
            reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL,
            product: Product | None = _PRODUCT) -> None:
    """Promote a version by hand: the gatekeeper validates it in Triton, then switches the champion
    without downtime (the old champion stays loaded); answered on models.decisions.v1."""
    _command("promote", version=version, reason=reason, wait_s=wait_s, model=model,
             product=product.value if product else None)


def rollback(reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL, product: Product | None = _PRODUCT,
             from_version: str = typer.Option(None, "--from",
                                              help="Roll back only if this version is still the champion.")
             ) -> None:
    """Restore the previous champion at once (no downtime: both versions stay loaded)."""
    _command("rollback", version=from_version, reason=reason, wait_s=wait_s, model=model,
             product=product.value if product else None)


def approve(version: str = typer.Argument(None, help="The challenger in shadow (default: the one there is)."),
            reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL,
            product: Product | None = _PRODUCT) -> None:
    """Promote the challenger in shadow now, on the evidence so far (a person's approval)."""
    _command("approve", version=version, reason=reason, wait_s=wait_s, model=model,
             product=product.value if product else None)


def reject(version: str = typer.Argument(None, help="The challenger in shadow (default: the one there is)."),
           reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL,
           product: Product | None = _PRODUCT) -> None:
    """End the challenger's shadow comparison: it is rejected (a person's verdict)."""
    _command("reject", version=version, reason=reason, wait_s=wait_s, model=model,
             product=product.value if product else None)


def train(
    reason: str = typer.Option("manual", help="Why (kept in the event and the MLflow run)."),
    requested_by: str = typer.Option(None, help="Who asks (default: the current user)."),
) -> None:
    """Ask the trainer to train now (publishes a training.requests.v1 command)."""
    import asyncio

    from emberwatch.operations.request_training import request_training

    event = asyncio.run(request_training(get_settings(), reason, requested_by))
    console.print(f"training requested: event {event.event_id} (reason: {markup_safe(reason)})")


class Protocol(StrEnum):
    http = "http"
    grpc = "grpc"


def predict(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JPEG or PNG image."),
    protocol: Protocol = typer.Option(Protocol.http, help="Talk to Triton over http or grpc."),
    product: Product | None = typer.Option(
        None, "--product", help="Ask the champion of this imagery product's model line (default mapbox: Triton's "
                                "wildfire model; sentinel2-swir: wildfire_sentinel2_swir, and so on)."),
) -> None:
    """Ask the served champion (Triton) whether IMAGE shows a wildfire location.

    gRPC goes over TLS with EMBERWATCH_TRITON_GRPC_TLS=true (a deployed Triton), its certificate
    checked against EMBERWATCH_TRITON_GRPC_TLS_CA when set."""
    from emberwatch.operations.predict_image import MODEL, predict_file

    settings = get_settings()
    url = settings.triton_url if protocol is Protocol.http else settings.triton_grpc_url
    try:
        result = predict_file(image, url=url, protocol=protocol.value, grpc_tls=settings.triton_grpc_tls,
                              grpc_tls_ca=settings.triton_grpc_tls_ca,
                              model=triton_model_for(MODEL, product.value if product else MAPBOX))
    except Exception as exc:  # noqa: BLE001 - tritonclient raises many types; report them plainly
        console.print(f"[red]prediction failed:[/] {type(exc).__name__}: {markup_safe(exc)}")
        raise typer.Exit(1) from None
    out.print(prediction_table(image.name, result))
