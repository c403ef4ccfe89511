"""The operator console in headless Chromium: first render with N active fires, and event to screen.

Starts a private Tansu on a free port, publishes N new fires (spread over Canada) to
``fires.observed.v1``, starts ``emberwatch console`` as its own process on a free port, waits until
it has read them all, then in Debian's chromium (playwright, no download):

* first render: from ``page.goto("/")`` to the map holding all N fires (markers and clusters: the
  page sets ``#map[data-fires-drawn=N]``) and the next painted frame, R times (a fresh page each);
* event to screen: M fires published one at a time, where the map looks at zoom 9 (no clustering
  there); for each, from the publish call (a producer started for it) and from the broker's ack to
  its marker in the page (the console's consumer, its server-sent events, its 250 ms burst
  coalescing and the redraw).

Prints a table. Usage: python benchmarks/bench_console.py [N] [--repeats R] [--live M]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.common.telemetry import free_port  # noqa: E402
from emberwatch.operations.create_topics import create_topics  # noqa: E402
from tests.conftest import REPO, env_for, running_stack  # noqa: E402
from tests.services.console.conftest import fire, publish, run_async  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


LIVE_AT = (64.0, -128.0)  # where the live fires appear (north of the season's spread)


def fires(n: int, prefix: str) -> list:  # up to 10,000 over Canada and the northern USA
    return [fire(f"{prefix}{i}", "new", agency=("bc", "ab", "sk", "on", "qc")[i % 5],
                 stage=("OC", "BH", "UC")[i % 3], hectares=float(1 + (i * 37) % 5000),
                 lat=42.0 + (i % 100) * 0.2, lon=-140.0 + (i // 100) * 0.8) for i in range(n)]


def live_fires(m: int) -> list:  # 0.05 degrees apart: separate markers at zoom 9
    return [fire(f"L{i}", "new", lat=LIVE_AT[0], lon=LIVE_AT[1] - 0.5 + i * 0.05) for i in range(m)]


DRAWN = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def wait_ready(url: str, n: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"console exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json().get("fires", 0) >= n:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the console did not read the fires in 120 s")


def main(n: int, repeats: int, live: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp) / "stack", "kafka") as settings:
        run_async(lambda: create_topics(settings))
        publish(settings, *fires(n, "F"))
        port = free_port()
        env = env_for(settings) | {"EMBERWATCH_CONSOLE_PORT": str(port), "EMBERWATCH_LOG_LEVEL": "WARNING"}
        log = Path(tmp) / "console.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", "from emberwatch.cli.main import app; app()", "console"],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, n, proc, log)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                renders = []
                for _ in range(repeats):
                    page = browser.new_page(base_url=url)
                    started = time.perf_counter()
                    page.goto("/")
                    page.wait_for_selector(f"#map[data-fires-drawn='{n}']", state="attached", timeout=60_000)
                    page.wait_for_function(DRAWN)  # the frame with them is painted
                    renders.append(time.perf_counter() - started)
                    page.close()
                page = browser.new_page(base_url=url)
                page.goto("/")
                page.wait_for_selector(f"#map[data-fires-drawn='{n}']", state="attached", timeout=60_000)
                page.evaluate(f"map.setView([{LIVE_AT[0]}, {LIVE_AT[1]}], 9, {{animate: false}})")
                to_screen, after_ack = [], []
                for event in live_fires(live):
                    started = time.perf_counter()
                    publish(settings, event)  # starts a producer, sends, waits for the ack, stops it
                    acked = time.perf_counter()
                    page.wait_for_selector(f".fire-marker[data-fire-key='{event.fire_key}']", state="attached",
                                           timeout=10_000)
                    to_screen.append(time.perf_counter() - started)
                    after_ack.append(time.perf_counter() - acked)
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
    table = Table(title=f"Operator console in headless Chromium ({n:,} active fires)")
    for col in ("measure", "n", "p50 s", "max s"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row(f"first render: goto('/') to {n:,} fires drawn", str(repeats),
                  f"{statistics.median(renders):.2f}", f"{max(renders):.2f}")
    table.add_row("event to screen: publish call (producer start included) to marker", str(live),
                  f"{statistics.median(to_screen):.2f}", f"{max(to_screen):.2f}")
    table.add_row("event to screen: broker's ack to marker", str(live),
                  f"{statistics.median(after_ack):.2f}", f"{max(after_ack):.2f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1000, help="active fires on the map")
    parser.add_argument("--repeats", type=int, default=5, help="first renders measured")
    parser.add_argument("--live", type=int, default=20, help="fires published one at a time")
    args = parser.parse_args()
    main(args.n, args.repeats, args.live)
