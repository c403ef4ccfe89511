"""Turn events into Discord webhook payloads: one embed per event, a colour per outcome.

Pure functions; the payloads may be too long for Discord — ``fit_discord_limits`` shortens them.
Every text that came from a feed, an event or a person goes in through ``as_text`` (markdown escaped:
no masked link, heading or mention can come from data) or, inside a code span, ``as_code``; every
payload says ``allowed_mentions: {"parse": []}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from emberwatch.contracts import Detection, ModelCandidate, ModelDecision, PipelineAlert
from emberwatch.contracts.events import MetricDelta
from emberwatch.contracts.products import MAPBOX, product_title
from services.notifier.discord_markdown import as_code, as_text
from services.notifier.label_buttons import label_buttons

COLOURS = {
    "candidate": 0x3498DB,    # blue
    "promoted": 0x2ECC71,     # green
    "rejected": 0xE67E22,     # orange
    "rolled_back": 0x9B59B6,  # purple
    "critical": 0xE74C3C,     # red
    "warning": 0xF1C40F,      # yellow
    "info": 0x95A5A6,         # grey
    "digest": 0x607D8B,       # blue grey
    "detection": 0xD35400,    # ember
}

ICONS = {"promoted": "✅", "rejected": "⛔", "rolled_back": "↩️", "critical": "🚨", "warning": "⚠️",
         "info": "ℹ️", "candidate": "🧪", "digest": "🗞️",
         "detection": "🔥"}


@dataclass(frozen=True)
class Links:
    mlflow_url: str
    grafana_url: str
    grafana_dashboard_uid: str
    console_url: str | None = None

    def tile_image(self, tile_id: str) -> str | None:
        """The tile's image on the operator console (which reads the tile store), if one is configured."""
        return f"{self.console_url.rstrip('/')}/tiles/{quote(tile_id)}" if self.console_url else None

    def fire(self, fire_key: str) -> str | None:
        """The fire on the console's map (``#fire=<key>`` opens it there), if a console is configured."""
        return f"{self.console_url.rstrip('/')}/#fire={quote(fire_key, safe='')}" if self.console_url else None

    def run(self, run_id: str) -> str:
        return f"{self.mlflow_url}/#/runs/{quote(run_id)}"

    def model_version(self, name: str, version: str) -> str:
        if not version:  # e.g. a refused command that named no version: the model's page
            return f"{self.mlflow_url}/#/models/{quote(name)}"
        return f"{self.mlflow_url}/#/models/{quote(name)}/versions/{quote(version)}"

    def dashboard(self, **variables: str) -> str:
        query = "&".join(f"var-{k}={quote(v)}" for k, v in variables.items())
        url = f"{self.grafana_url.rstrip('/')}/d/{quote(self.grafana_dashboard_uid)}"
        return f"{url}?{query}" if query else url


def _footer(event: Any) -> dict[str, str]:
    return {"text": f"{as_text(event.producer, keep_lines=False)} · event {as_text(event.event_id)} · "
                    f"trace {as_text(event.trace_id)}"}


def _num(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def delta_line(d: MetricDelta) -> str:
    interval = ""
    if d.ci_low is not None and d.ci_high is not None:
        signed = d.delta is not None
        interval = (f" [{_num(d.ci_low, signed=signed)}, {_num(d.ci_high, signed=signed)}] "
                    f"{d.confidence * 100:.3g}% CI")
    if d.delta is None:  # a single model's rate (the first model's floor)
        return f"{_num(d.challenger)}{interval}"
    return f"Δ {_num(d.delta, signed=True)}{interval} ({_num(d.champion)} → {_num(d.challenger)})"


def _line(value: object) -> str:
    """One line of text from data, escaped."""
    return as_text(value, keep_lines=False)


def _seen(product: str) -> str:
    """The imagery a model sees, as people name it: "(Sentinel-2 SWIR)"."""
    return f"({_line(product_title(product))})"


def _sensed(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _imagery(e: Detection) -> str:
    """The detected tile's product and, for a dated scene, when it was sensed; a mosaic says it has no date."""
    title = _line(product_title(e.product))
    return f"{title}, acquired {_sensed(e.acquired_at)}" if e.acquired_at else f"{title} (undated mosaic)"


def _credits(product: str) -> str:
    """The imagery's credits: Copernicus for Sentinel-2, Mapbox's own for its mosaic."""
    return "© Mapbox © OpenStreetMap © Maxar" if product == MAPBOX else "Contains modified Copernicus Sentinel data"


def _message(username: str, embed: dict[str, Any], avatar_url: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"username": username, "embeds": [embed],
                               "allowed_mentions": {"parse": []}}
    if avatar_url:
        payload["avatar_url"] = avatar_url
    return payload


def leakage_fields(e: ModelCandidate) -> list[dict[str, Any]]:
    """The leakage check beside the CNN: a warning field when a shortcut baseline came close."""
    lk = e.leakage
    if lk is None:
        return []
    scores = f"CNN {_num(lk.cnn_accuracy)} · location only {_num(lk.location_accuracy)} · " \
             f"hand statistics {_num(lk.statistics_accuracy)} (accuracy on {_line(lk.split)}, n = {lk.n})"
    if lk.warning:
        return [{"name": f"{ICONS['warning']} Leakage warning", "value": as_text(lk.warning), "inline": False},
                {"name": "Leakage check", "value": scores, "inline": False}]
    return [{"name": "Leakage check", "value": f"{scores}: no shortcut within {lk.margin:.0%}", "inline": False}]


class Renderer:
    def __init__(self, links: Links, username: str, avatar_url: str | None = None) -> None:
        self.links, self.username, self.avatar_url = links, username, avatar_url

    def candidate(self, e: ModelCandidate) -> dict[str, Any]:
        counts = " · ".join(
            f"{_line(split)}: {c.wildfire} fire / {c.nowildfire} no-fire" for split, c in sorted(e.counts.items()))
        metrics = "\n".join(f"{_line(k)}: {_num(v)}" for k, v in sorted(e.metrics.items())) or "none"
        embed = {
            "title": f"{ICONS['candidate']} New candidate {_line(e.model_name)} v{_line(e.version)} "
                     f"{_seen(e.product)}",
            "description": "A newly trained model was registered as `challenger`; the gatekeeper "
                           "will compare it with the champion.",
            "url": self.links.model_version(e.model_name, e.version),
            "color": COLOURS["candidate"],
            "fields": [
                {"name": "Validation metrics", "value": metrics, "inline": True},
                {"name": "Examples", "value": counts or "none", "inline": True},
                {"name": "Dataset", "value": f"`{as_code(e.dataset_digest)}`", "inline": False},
                *leakage_fields(e),
                {"name": "Links", "value": f"[MLflow run]({self.links.run(e.run_id)}) · "
                                           f"[model version]({self.links.model_version(e.model_name, e.version)})",
                 "inline": False},
            ],
            "footer": _footer(e),
            "timestamp": e.occurred_at.isoformat(),
        }
        return _message(self.username, embed, self.avatar_url)

    def decision(self, e: ModelDecision) -> dict[str, Any]:
        ev = e.evidence
        champion = f"v{_line(e.champion_version)}" if e.champion_version else "none"
        name, candidate, seen = _line(e.model_name), _line(e.candidate_version), _seen(e.product)
        titles = {
            "promoted": f"{ICONS['promoted']} {name} v{candidate} {seen} promoted to champion",
            "rejected": f"{ICONS['rejected']} {name} v{candidate} {seen} rejected",
            # the gatekeeper's rollback: candidate_version is the champion rolled back, champion_version
            # the previous champion that serves again
            "rolled_back": f"{ICONS['rolled_back']} {name} {seen} rolled back from v{candidate} to {champion}",
        }
        title = titles[e.decision]
        if e.refused:  # an operator's command the gatekeeper could not carry out: nothing changed
            title = f"{ICONS['rejected']} {name} {seen}: an operator's command was refused"
        fields: list[dict[str, Any]] = []
        if e.decision == "rolled_back":
            fields.append({"name": "Champion now", "value": f"{champion} (was v{candidate})", "inline": True})
        else:
            fields.append({"name": "Champion", "value": champion, "inline": True})
        if e.requested_by:
            fields.append({"name": "Requested by", "value": _line(e.requested_by), "inline": True})
        if ev.n:
            fields.append({"name": "Paired samples", "value": f"n = {ev.n} ({ev.n_wildfire} wildfire, "
                                    f"{ev.n - ev.n_wildfire} fire-free)", "inline": True})
            fields.append({"name": "p-value (exact McNemar, one-sided)", "value": _p(ev.p_value), "inline": True})
        if ev.rule:
            rule = as_text(ev.rule) + (f" (alpha at this look {ev.alpha:.3g})" if ev.alpha else "")
            fields.append({"name": "Rule", "value": rule, "inline": True})
            fields.append({"name": "Discordant pairs",
                           "value": f"challenger only right: {ev.challenger_only_correct} · "
                                    f"champion only right: {ev.champion_only_correct} · "
                                    f"both right: {ev.both_correct} · both wrong: {ev.both_wrong}",
                           "inline": False})
        for d in ev.deltas:
            fields.append({"name": _line(d.metric), "value": delta_line(d), "inline": False})
        if ev.thresholds:
            fields.append({"name": "Thresholds",
                           "value": " · ".join(f"{_line(k)} {v:g}" if isinstance(v, float | int)
                                               else f"{_line(k)} {_line(v)}"
                                               for k, v in sorted(ev.thresholds.items())),
                           "inline": False})
        if ev.method:
            fields.append({"name": "Method", "value": as_text(ev.method), "inline": False})
        for warning in e.warnings:
            fields.append({"name": f"{ICONS['warning']} Warning", "value": as_text(warning), "inline": False})
        run_link = (f"[MLflow run]({self.links.run(e.run_id)})" if e.run_id else
                    f"[MLflow model]({self.links.model_version(e.model_name, e.candidate_version)})")
        dashboard = self.links.dashboard(model=e.model_name)
        fields.append({"name": "Links", "value": f"{run_link} · [Grafana dashboard]({dashboard})",
                       "inline": False})
        embed = {
            "title": title,
            "description": as_text(e.reason),
            "url": self.links.run(e.run_id) if e.run_id else
            self.links.model_version(e.model_name, e.candidate_version),
            "color": COLOURS[e.decision],
            "fields": fields,
            "footer": _footer(e),
            "timestamp": e.occurred_at.isoformat(),
        }
        return _message(self.username, embed, self.avatar_url)

    def alert(self, e: PipelineAlert) -> dict[str, Any]:
        fields = [{"name": _line(k), "value": f"`{as_code(v)}`", "inline": True} for k, v in list(e.details.items())]
        embed = {
            "title": f"{ICONS[e.severity]} {e.severity.upper()}: {_line(e.component)} — {_line(e.alert)}",
            "description": as_text(e.message),
            "color": COLOURS[e.severity],
            "fields": fields,
            "footer": _footer(e),
            "timestamp": e.occurred_at.isoformat(),
        }
        return _message(self.username, embed, self.avatar_url)

    def detection(self, e: Detection) -> dict[str, Any]:
        """A live tile the champion called a wildfire, with the buttons a person answers with."""
        label = {"wildfire": "fire location", "nowildfire": "matched fire-free place"}[e.label]
        fields: list[dict[str, Any]] = [
            {"name": "Champion", "value": f"v{_line(e.model_version)}: P(wildfire) {e.wildfire_probability:.2f} "
                                          f"(threshold {e.threshold:.2f})", "inline": True}]
        if e.challenger_version is not None and e.challenger_probability is not None:
            fields.append({"name": "Challenger in shadow",
                           "value": f"v{_line(e.challenger_version)}: P(wildfire) {e.challenger_probability:.2f}",
                           "inline": True})
        fields += [
            {"name": "Place", "value": f"{e.lat:.4f}, {e.lon:.4f}", "inline": True},
            {"name": "Imagery", "value": _imagery(e), "inline": True},
            {"name": "Tile", "value": f"`{as_code(e.tile_id)}`", "inline": False},
            {"name": "Your answer", "value": "The buttons below, or `/label "
                                             f"{as_code(e.tile_id)} fire|no-fire`: the next training uses it.",
             "inline": False},
        ]
        image = self.links.tile_image(e.tile_id)
        if image:
            fields.append({"name": "Image", "value": f"[on the console]({image}) · {_credits(e.product)}",
                           "inline": False})
        fire = self.links.fire(e.fire_key) if e.fire_key else None
        if fire:
            fields.append({"name": "Fire", "value": f"[on the console's map]({fire})", "inline": False})
        embed = {
            "title": f"{ICONS['detection']} Detection: {_line(e.model_name)} v{_line(e.model_version)} "
                     f"{_seen(e.product)} sees a wildfire" + (f" at {_line(e.fire_key)}" if e.fire_key else ""),
            "description": f"A live tile ({label} by the pipeline's own label"
                           + (f", acquired {_sensed(e.acquired_at)}" if e.acquired_at else "")
                           + f") scored {e.wildfire_probability:.2f}. Is it a fire?",
            "color": COLOURS["detection"],
            "fields": fields,
            "footer": _footer(e),
            "timestamp": e.occurred_at.isoformat(),
        }
        payload = _message(self.username, embed, self.avatar_url)
        payload["components"] = label_buttons(e.tile_id)
        return payload

    def digest(self, alerts: Sequence[PipelineAlert]) -> dict[str, Any]:
        """One message for a burst of low-priority alerts: counts per kind, then the lines."""
        kinds = Counter((a.component, a.alert) for a in alerts)
        first = min(a.occurred_at for a in alerts)
        last = max(a.occurred_at for a in alerts)
        lines = [f"• `{as_code(a.component)}/{as_code(a.alert)}` {_line(a.message)}" for a in alerts]
        fields = [{"name": f"{_line(component)} — {_line(alert)}", "value": f"{n} event{'s' if n != 1 else ''}",
                   "inline": True} for (component, alert), n in kinds.most_common()]
        embed = {
            "title": f"{ICONS['digest']} Digest: {len(alerts)} low-priority event{'s' if len(alerts) != 1 else ''}",
            "description": "\n".join(lines),
            "color": COLOURS["digest"],
            "fields": fields,
            "footer": {"text": f"{first:%Y-%m-%d %H:%M:%S} – {last:%H:%M:%S} UTC · "
                               f"{len(alerts)} events"},
            "timestamp": last.isoformat(),
        }
        return _message(self.username, embed, self.avatar_url)


def mark_uncertain(payload: dict[str, Any]) -> dict[str, Any]:
    """The same message, flagged as a possible repeat (posted again after an unconfirmed attempt)."""
    note = "(Possible repeat: an earlier attempt to post this was not confirmed before a restart.)"
    out = dict(payload)
    out["content"] = f"{payload.get('content') or ''}\n{note}".strip()
    return out
