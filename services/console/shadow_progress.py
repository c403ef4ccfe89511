"""The shadow's progress, read from the gatekeeper's own ``/metrics`` (what Prometheus scrapes).

The gatekeeper keeps its pairs on its own volume; what it says of them is in its metrics: the pairs
per class now (``emberwatch_model_shadow_class_pairs``), the gate's minimums
(``emberwatch_gatekeeper_gate_minimum_pairs``), when the shadow began and how often the two models
agree. A shadow runs per model line (one per imagery product): each is named with the product its
model sees. The console asks when a page asks; a gatekeeper that does not answer is said so.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from emberwatch.contracts.products import product_of_model, product_title

LABELS = ("wildfire", "nowildfire")


def parse_progress(text: str, base_model: str | None = None) -> dict:
    """The shadows in progress, newest first (``shadow``: the newest, or none) and the gate's minimums,
    from a metrics exposition; ``base_model`` names the lines' models (the product each shadow sees)."""
    minimums: dict[str, int] = {}
    pairs: dict[tuple[str, str, str], dict[str, int]] = {}
    started: dict[tuple[str, str, str], float] = {}
    agreement: dict[tuple[str, str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.labels.get("model", ""), s.labels.get("version", ""), s.labels.get("champion", ""))
            if s.name == "emberwatch_gatekeeper_gate_minimum_pairs":
                minimums[s.labels["label"]] = int(s.value)
            elif s.name == "emberwatch_model_shadow_class_pairs":
                pairs.setdefault(key, {})[s.labels["label"]] = int(s.value)
            elif s.name == "emberwatch_model_shadow_started_timestamp_seconds":
                started[key] = s.value
            elif s.name == "emberwatch_model_shadow_agreement":
                agreement.setdefault(key, {})[s.labels["source"]] = round(s.value, 4)
    shadows, lines = [], set()
    for key in sorted(started, key=started.__getitem__, reverse=True):
        if key[0] in lines:
            continue  # one shadow at a time per line; the newest if two linger
        lines.add(key[0])
        counts = {label: pairs.get(key, {}).get(label, 0) for label in LABELS}
        product = product_of_model(base_model, key[0]) if base_model else None
        shadows.append({"model_name": key[0], "challenger": key[1], "champion": key[2], "started_at": started[key],
                        "product": product, "product_title": product_title(product) if product else None,
                        "pairs": {"all": sum(counts.values()), **counts}, "agreement": agreement.get(key, {})})
    return {"available": True, "minimums": minimums, "shadow": shadows[0] if shadows else None, "shadows": shadows}


async def read_progress(client: httpx.AsyncClient, url: str | None, base_model: str | None = None) -> dict:
    if not url:
        return {"available": False, "error": "EMBERWATCH_CONSOLE_GATEKEEPER_METRICS_URL is empty"}
    try:
        response = await client.get(url, timeout=3.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return {"available": False, "error": f"the gatekeeper's metrics at {url} did not answer "
                                             f"({type(exc).__name__}): is the gatekeeper running?"}
    return parse_progress(response.text, base_model)
