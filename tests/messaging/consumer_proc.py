"""A consumer process for the kill/resume test: records each handled alert in a file."""

from __future__ import annotations

import asyncio
import os
import sys

from emberwatch.common.config import Settings
from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.subscription import Delivery, subscribe


async def main(topic: str, group: str, out_path: str, max_records: str) -> None:
    settings = Settings()
    broker = build_broker(settings, "resume")
    out = open(out_path, "a", buffering=1)

    async def handle(event: PipelineAlert) -> None:
        out.write(event.alert + "\n")
        out.flush()
        os.fsync(out.fileno())
        await asyncio.sleep(0.02)

    subscribe(broker, topic, PipelineAlert, handle,
              Delivery(service="resume", group_id=group, session_timeout_ms=settings.kafka_session_timeout_ms,
                       max_records=int(max_records)))
    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
