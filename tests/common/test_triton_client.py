"""The shared Triton client (the gatekeeper's and the console's) against a real Triton, used from
many threads at once (the
service calls it from asyncio worker threads; tritonclient.http's gevent pool belongs to one thread)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from emberwatch.common.triton_client import Triton
from emberwatch.stack import manage
from tests.conftest import stack_settings

pytestmark = pytest.mark.timeout(300)


def test_one_client_object_works_from_any_thread(tmp_path):
    settings = stack_settings(tmp_path / "state", "triton")
    manage.up(settings)
    try:
        triton = Triton(settings.triton_url, timeout_s=30)
        assert triton.live()
        triton.ready("wildfire")  # made in this thread first, then used everywhere

        def use(i: int) -> tuple[bool, bool]:
            out = (triton.live(), triton.ready("head", "1"))
            if i % 5 == 0:
                triton.close()  # a thread may close its own client; the next call makes a new one
                out = (triton.live(), out[1])
            return out

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(use, range(60)))
        assert all(live for live, _ in results)
        assert not any(ready for _, ready in results)  # nothing loaded: a clean False, not an exception
    finally:
        manage.down(settings)
    assert not Triton(settings.triton_url, timeout_s=2).live()  # gone: False, not an exception
