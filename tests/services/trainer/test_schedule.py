import asyncio

from services.trainer.schedule import TrainingScheduler


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _scheduler(clock, result=True, **kw):
    calls: list[str] = []

    async def run(reason: str) -> bool:
        calls.append(reason)
        if isinstance(result, Exception):
            raise result
        return result

    opts = dict(threshold=3, debounce_s=10, max_wait_s=60, clock=clock)
    opts.update(kw)
    return TrainingScheduler(run, **opts), calls


async def test_threshold_then_debounce_gives_one_training():
    clock = Clock()
    sched, calls = _scheduler(clock)
    sched.tiles_arrived()
    sched.tiles_arrived()
    assert not sched.due
    sched.tiles_arrived()
    assert sched.due
    assert await sched.run_once() is None  # not quiet yet
    clock.t += 5
    sched.tiles_arrived()  # a burst continues
    clock.t += 9
    assert await sched.run_once() is None
    clock.t += 1.5
    assert await sched.run_once() is True
    assert calls == ["4 new tiles"]
    assert not sched.due and sched.new_tiles == 0
    assert await sched.run_once() is None


async def test_max_wait_bounds_a_never_quiet_stream():
    clock = Clock()
    sched, calls = _scheduler(clock)
    for _ in range(20):
        clock.t += 4
        sched.tiles_arrived()
        await sched.run_once()
    assert len(calls) == 1  # 3rd tile at +12, due; trained once max_wait (60 s) passed


async def test_request_trains_without_new_tiles_and_reasons_merge():
    clock = Clock()
    sched, calls = _scheduler(clock, debounce_s=0)
    sched.request("operator")
    sched.request("operator")
    assert await sched.run_once() is True
    assert calls == ["requested: operator"]


async def test_failure_backs_off_and_keeps_the_tiles():
    clock = Clock()
    sched, calls = _scheduler(clock, result=RuntimeError("mlflow gone"), debounce_s=0, failure_retry_s=30)
    for _ in range(3):
        sched.tiles_arrived()
    assert await sched.run_once() is False
    assert sched.due and sched.new_tiles == 3
    clock.t += 10
    assert await sched.run_once() is None
    clock.t += 25
    assert await sched.run_once() is False
    assert len(calls) == 2


async def test_schedule_fires_only_with_new_tiles():
    clock = Clock()
    sched, calls = _scheduler(clock, schedule_s=100, debounce_s=0)
    clock.t += 200
    assert await sched.run_once() is None
    sched.tiles_arrived()
    assert await sched.run_once() is True
    assert calls == ["schedule (100s)"]


async def test_startup_backlog_is_due_and_one_at_a_time():
    clock = Clock()
    started = asyncio.Event()
    release = asyncio.Event()
    calls = []

    async def slow(reason: str) -> bool:
        calls.append(reason)
        started.set()
        await release.wait()
        return True

    sched = TrainingScheduler(slow, threshold=3, debounce_s=0, max_wait_s=0, initial_new=5, clock=clock)
    assert sched.due
    first = asyncio.create_task(sched.run_once())
    await started.wait()
    sched.request("again")
    assert await sched.run_once() is None  # one training at a time
    release.set()
    assert await first is True
    assert sched.due  # the request made during the training is kept
    assert await sched.run_once() is True
    assert calls == ["5 new tiles waiting at startup", "requested: again"]
