"""The services, named once: the command line, the local stack, the /metrics ports and the Prometheus
configuration all read them from here."""

from __future__ import annotations

# The services that consume and produce events, in the order their default /metrics ports follow
# EMBERWATCH_SERVICES_METRICS_BASE_PORT.
PIPELINE_SERVICES = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier")
# Every service `emberwatch run` starts: the pipeline's and the operator console.
SERVICES = (*PIPELINE_SERVICES, "console")
