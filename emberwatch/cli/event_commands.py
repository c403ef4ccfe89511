"""``emberwatch replay``, ``emberwatch asyncapi`` and ``emberwatch create-topics``: the event topics."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from emberwatch.cli.consoles import console, out
from emberwatch.cli.render import markup_safe, replay_plan_table
from emberwatch.common.config import get_settings


def replay(
    topic: str = typer.Argument(..., help="Topic to replay, e.g. fires.observed.v1"),
    group: str = typer.Option(None, "--group", "-g",
                              help="Consumer group to rewind (offsets mode). Omit with --republish."),
    from_time: datetime = typer.Option(None, "--from-time", help="Start at this time (UTC, ISO 8601)."),
    from_offset: int = typer.Option(None, "--from-offset", help="Start at this offset on every partition."),
    republish: bool = typer.Option(False, "--republish",
                                   help="Publish the records again instead of rewinding a group."),
    target: str = typer.Option(None, "--to", help="With --republish: publish to this topic instead."),
) -> None:
    """Replay a topic: rewind a consumer group's offsets (refused while the group is active), or
    re-publish its records (facts keep their ids, so consumers do not duplicate work)."""
    import asyncio

    from rich.progress import Progress

    from emberwatch.operations.replay_topic import ReplayError, Start, rewind_group
    from emberwatch.operations.replay_topic import republish as do_republish

    settings = get_settings()
    if from_time is not None and from_time.tzinfo is None:
        from_time = from_time.replace(tzinfo=UTC)
    try:
        start = Start(time=from_time, offset=from_offset)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        if republish:
            with Progress(console=console) as progress:
                task = progress.add_task(f"re-publishing {topic}", total=None)
                count = asyncio.run(do_republish(
                    settings, topic, start, target=target,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total)))
            console.print(f"re-published {count} record(s) of {topic} to {target or topic}")
            return
        if not group:
            raise typer.BadParameter("--group is required unless --republish is given")
        plan = asyncio.run(rewind_group(settings, topic, group, start))
    except ReplayError as exc:
        console.print(f"[red]replay refused:[/] {markup_safe(exc)}")
        raise typer.Exit(2) from None
    out.print(replay_plan_table(group, topic, plan))


def asyncapi(
    output: str = typer.Option("-", "--output", "-o", help="File to write, - for stdout."),
) -> None:
    """Print the AsyncAPI document of Emberwatch's event contracts, generated from the code."""
    from emberwatch.contracts.asyncapi import asyncapi_json

    text = asyncapi_json()
    if output == "-":
        print(text)
    else:
        with open(output, "w") as fh:
            fh.write(text + "\n")
        console.print(f"wrote {output}")


def create_topics() -> None:
    """Create every event topic and its DLQ with the chosen partition counts
    (EMBERWATCH_KAFKA_TOPIC_PARTITIONS, EMBERWATCH_KAFKA_DEFAULT_PARTITIONS) and topic configs such as
    retention (EMBERWATCH_KAFKA_TOPIC_CONFIGS); existing ones are left as they are and listed, with
    the configs that differ. Run it once against a new cluster, before the services."""
    import asyncio

    from rich.table import Table

    from emberwatch.operations.create_topics import create_topics as do_create

    try:
        plans = asyncio.run(do_create(get_settings()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    table = Table(title="Event topics")
    for col in ("topic", "partitions", "configs", "state"):
        table.add_column(col, justify="right" if col == "partitions" else "left")
    for p in plans:
        state = "created" if p.existing is None else (
            f"[yellow]exists with {p.existing} (fewer than asked)[/]" if p.short else f"exists ({p.existing})")
        if p.config_drift is None:
            state += "; [yellow]configs unknown (the broker did not describe them)[/]"
        elif p.config_drift:
            state += "; [yellow]configs differ: " + ", ".join(
                f"{k} is {have if have is not None else 'the default'}" for k, (have, _) in p.config_drift.items()) + "[/]"
        table.add_row(p.topic, str(p.partitions), ",".join(f"{k}={v}" for k, v in p.configs.items()), state)
    out.print(table)
    if any(p.config_drift for p in plans):
        console.print("[yellow]some existing topics have other configs than asked: change them with the "
                      "cluster's tools (kafka-configs.sh --alter --entity-type topics)[/]")
    if any(p.short for p in plans):
        console.print("[yellow]some topics have fewer partitions than asked: fewer replicas can share "
                      "their work; add partitions with the cluster's tools (keys are re-mapped)[/]")
