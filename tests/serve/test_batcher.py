"""The micro-batcher on fakes: a fake clock, a fake runner, an executor that runs inline."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from forgeml.serve._batcher import Batcher, LatencyModel, Overloaded
from forgeml.serve._types import RequestError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Inline(Executor):
    """Runs each submitted call at once, in the caller's thread."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:
            future.set_exception(e)
        return future


class TimedRunner:
    """Doubles ``x``; each batch advances the fake clock by ``a * rows + b`` seconds."""

    def __init__(self, clock: FakeClock, a: float = 0.001, b: float = 0.01) -> None:
        self.clock, self.a, self.b = clock, a, b
        self.batches: list[int] = []

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        if any(v is None for v in columns["x"]):
            raise ValueError("a missing x")
        self.batches.append(n)
        self.clock.now += self.a * n + self.b
        return [2 * v for v in columns["x"]], None


def rows(*values: Any) -> dict[str, list[Any]]:
    return {"x": list(values)}


def test_latency_model_recovers_a_and_b() -> None:
    model = LatencyModel()
    for n in (1, 5, 20, 100, 3, 50) * 5:
        model.observe(n, 0.002 * n + 0.03)
    a, b = model.coefficients
    assert a == pytest.approx(0.002, rel=1e-6)
    assert b == pytest.approx(0.03, rel=1e-6)
    assert model.predict(10) == pytest.approx(0.05, rel=1e-6)
    one_size = LatencyModel()
    one_size.observe(10, 0.5)
    assert one_size.coefficients == (pytest.approx(0.05), 0.0)


def test_queued_requests_share_a_batch_and_get_their_own_rows() -> None:
    async def main() -> tuple[list[Any], list[int]]:
        clock = FakeClock()
        runner = TimedRunner(clock)
        batcher = Batcher(runner, Inline(), max_batch_rows=4, clock=clock, own_clock=clock)
        batcher.start()
        answers = await asyncio.gather(*(batcher.predict(rows(i, i + 10), 2) for i in range(5)))
        await batcher.stop()
        return [a[0] for a in answers], runner.batches

    answers, batches = asyncio.run(main())
    assert answers == [[2 * i, 2 * (i + 10)] for i in range(5)]
    assert batches == [4, 4, 2]  # at most max_batch_rows per batch, in arrival order


def test_a_failing_request_fails_alone() -> None:
    async def main() -> list[Any]:
        clock = FakeClock()
        batcher = Batcher(TimedRunner(clock), Inline(), clock=clock, own_clock=clock)
        batcher.start()
        answers = await asyncio.gather(
            batcher.predict(rows(1), 1),
            batcher.predict(rows(None), 1),
            batcher.predict(rows(3), 1),
            return_exceptions=True,
        )
        await batcher.stop()
        return answers

    first, failed, third = asyncio.run(main())
    assert first[0] == [2] and third[0] == [6]
    assert isinstance(failed, ValueError) and "missing" in str(failed)


def test_a_full_queue_answers_503_with_retry_after() -> None:
    gate = threading.Event()

    class Blocking:
        def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], None]:
            gate.wait(10)
            return list(columns["x"]), None

    async def main() -> tuple[list[Any], int, int]:
        pool = ThreadPoolExecutor(1)
        batcher = Batcher(Blocking(), pool, max_batch_rows=1, max_queue=3)
        batcher.start()
        running = asyncio.ensure_future(batcher.predict(rows(0), 1))
        while batcher.depth:  # the first job left the queue: its batch runs
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.predict(rows(i), 1)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        refused = await asyncio.gather(
            *(batcher.predict(rows(9), 1) for _ in range(4)), return_exceptions=True
        )
        depth = batcher.depth
        gate.set()
        answers = await asyncio.gather(running, *queued)
        await batcher.stop()
        pool.shutdown()
        return refused, depth, len(answers)

    refused, depth, answered = asyncio.run(main())
    assert depth == 3  # bounded: the refused requests were never queued
    assert answered == 4
    for error in refused:
        assert isinstance(error, Overloaded)
        assert error.status == 503 and error.code == "overloaded"
        assert int(error.headers["Retry-After"]) >= 1


def test_a_predicted_wait_over_the_budget_is_refused_on_the_fake_clock() -> None:
    async def main() -> tuple[list[Any], float]:
        clock = FakeClock()
        runner = TimedRunner(clock, a=0.01, b=0.1)  # 100 rows: 1.1 s
        batcher = Batcher(
            runner,
            Inline(),
            max_batch_rows=100,
            latency_budget_ms=1500.0,
            clock=clock,
            own_clock=clock,
        )
        batcher.start()
        for n in (1, 10, 100, 50):  # teach the latency model
            await batcher.predict(rows(*range(n)), n)
        assert batcher.predicted_wait() == 0.0  # idle
        alone = await batcher.predict(rows(*range(300)), 300)  # 3.3 s of its own: accepted
        assert len(alone[0]) == 300
        # Five requests of 100 rows arrive before the dispatcher runs: the first waits 0 s,
        # the second 1.1 s, the third would wait 2.2 s > 1.5 s: it and later ones are refused.
        jobs = [asyncio.ensure_future(batcher.predict(rows(*range(100)), 100)) for _ in range(5)]
        answers = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return answers, batcher.latency.predict(100)

    answers, per_batch = asyncio.run(main())
    assert per_batch == pytest.approx(1.1, rel=1e-6)
    assert [isinstance(a, Overloaded) for a in answers] == [False, False, True, True, True]
    assert answers[2].headers["Retry-After"] == "3"  # ceil(2.2)
    assert "latency budget" in answers[2].message


def test_stop_predicts_what_is_queued_then_refuses() -> None:
    async def main() -> tuple[list[Any], RequestError]:
        clock = FakeClock()
        batcher = Batcher(
            TimedRunner(clock), Inline(), max_batch_rows=1, clock=clock, own_clock=clock
        )
        batcher.start()
        pending = [asyncio.ensure_future(batcher.predict(rows(i), 1)) for i in range(5)]
        await asyncio.sleep(0)  # all queued
        await batcher.stop()  # no polling: wakes the dispatcher, which drains and ends
        done = [p.result()[0][0] for p in pending]
        with pytest.raises(RequestError) as refused:
            await batcher.predict(rows(1), 1)
        return done, refused.value

    done, refused = asyncio.run(main())
    assert done == [0, 2, 4, 6, 8]
    assert refused.status == 503


def test_max_wait_fills_a_batch_from_later_arrivals() -> None:
    async def main() -> list[int]:
        runner = TimedRunner(FakeClock(), a=0, b=0)
        batcher = Batcher(runner, Inline(), max_batch_rows=8, max_wait_ms=200)
        batcher.start()
        first = asyncio.ensure_future(batcher.predict(rows(1), 1))
        await asyncio.sleep(0.02)
        later = [asyncio.ensure_future(batcher.predict(rows(i), 1)) for i in range(7)]
        await asyncio.gather(first, *later)
        await batcher.stop()
        return runner.batches

    assert asyncio.run(main()) == [8]  # one batch: the first waited for the other seven


class CountingInline(Inline):
    """``Inline``, counting the calls handed to it."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def test_a_lone_small_request_of_a_fast_model_is_answered_on_the_event_loop() -> None:
    from forgeml.serve._batcher import INLINE_AFTER

    async def main() -> tuple[int, int, list[Any], int, int]:
        clock = FakeClock()
        executor = CountingInline()
        runner = TimedRunner(clock, a=0.00001, b=0.0001)  # 0.11 ms for one row
        batcher = Batcher(runner, executor, clock=clock, own_clock=clock, inline_ms=0.25)
        batcher.start()
        for i in range(INLINE_AFTER):  # timed in the worker first
            await batcher.predict(rows(i), 1)
        before = executor.calls
        answer = await batcher.predict(rows(21), 1)
        inline_calls = executor.calls - before
        # a request already waiting for a batch: the next one joins the queue, not the loop
        big = asyncio.ensure_future(batcher.predict(rows(*range(50)), 50))
        small = asyncio.ensure_future(batcher.predict(rows(7), 1))
        await asyncio.gather(big, small)
        await batcher.stop()
        return inline_calls, batcher.inlined, answer[0], executor.calls - before, before

    inline_calls, inlined, answer, later_calls, before = asyncio.run(main())
    assert before == INLINE_AFTER and inline_calls == 0 and inlined == 1
    assert answer == [42]
    assert later_calls == 1  # the two queued requests were predicted as one batch


def test_a_slow_model_is_never_run_on_the_event_loop() -> None:
    async def main() -> tuple[int, int]:
        clock = FakeClock()
        executor = CountingInline()
        batcher = Batcher(
            TimedRunner(clock, a=0.0, b=0.005), executor, clock=clock, own_clock=clock
        )
        batcher.start()
        for i in range(20):
            await batcher.predict(rows(i), 1)
        await batcher.stop()
        return executor.calls, batcher.inlined

    assert asyncio.run(main()) == (20, 0)


def test_a_fast_model_that_sometimes_loses_the_cpu_is_still_answered_inline() -> None:
    class Spiky(TimedRunner):
        """0.1 ms a call, but every fourth call waits 50 ms (descheduled)."""

        def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
            self.b = 0.05 if len(self.batches) % 4 == 3 else 0.0001
            return super().run(columns, n)

    async def main() -> int:
        clock = FakeClock()
        batcher = Batcher(Spiky(clock, a=0.0), CountingInline(), clock=clock, own_clock=clock)
        batcher.start()
        for i in range(12):
            await batcher.predict(rows(i), 1)
        await batcher.stop()
        return batcher.inlined

    assert asyncio.run(main()) > 0


def test_requests_arriving_together_are_batched_not_answered_one_by_one_on_the_loop() -> None:
    from forgeml.serve._batcher import INLINE_AFTER

    async def main() -> tuple[list[int], int, list[Any]]:
        clock = FakeClock()
        runner = TimedRunner(clock, a=0.00001, b=0.0001)  # fast enough to be answered inline
        batcher = Batcher(runner, CountingInline(), clock=clock, own_clock=clock)
        batcher.start()
        for i in range(INLINE_AFTER):
            await batcher.predict(rows(i), 1)
        del runner.batches[:]
        alone = await batcher.predict(rows(1), 1)
        together = await asyncio.gather(*(batcher.predict(rows(i), 1) for i in range(6)))
        await batcher.stop()
        return runner.batches, batcher.inlined, [alone[0], *(a[0] for a in together)]

    batches, inlined, answers = asyncio.run(main())
    assert inlined == 1  # the lone request, on the loop
    assert batches == [1, 6]  # the six concurrent ones, one batch
    assert answers == [[2], *([2 * i] for i in range(6))]


class TwoClocks(TimedRunner):
    """``TimedRunner`` taking ``own`` seconds a row of its own work, on the wall clock and on
    a second clock (``cpu``), and in a thread other than the loop's 4 ms a row more on the
    wall clock (waiting for the GIL)."""

    def __init__(self, clock: FakeClock, cpu: FakeClock, own: float) -> None:
        super().__init__(clock, a=own, b=0.0)
        self.cpu, self.own = cpu, own

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        self.cpu.now += self.own * n
        if threading.current_thread() is not threading.main_thread():
            self.clock.now += 0.004 * n
        return super().run(columns, n)


class CountingThreads(ThreadPoolExecutor):
    """One worker thread, counting the calls handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def _batches_on_loop(own: float) -> tuple[list[int], int, int, list[Any]]:
    """Five lone requests, then 3 rounds of 8 concurrent ones, of a runner taking ``own``
    seconds of its own a row: its batches, how many ran on the loop, the executor's calls
    for the concurrent ones, their answers."""
    from forgeml.serve._batcher import INLINE_AFTER

    async def main() -> tuple[list[int], int, int, list[Any]]:
        clock, cpu = FakeClock(), FakeClock()
        runner = TwoClocks(clock, cpu, own)
        executor = CountingThreads()
        batcher = Batcher(runner, executor, clock=clock, own_clock=cpu)
        batcher.start()
        for i in range(INLINE_AFTER):
            await batcher.predict(rows(i), 1)
        del runner.batches[:]
        before, answers = executor.calls, []
        for _ in range(3):
            together = await asyncio.gather(*(batcher.predict(rows(i), 1) for i in range(8)))
            answers += [a[0] for a in together]
        await batcher.stop()
        executor.shutdown()
        return runner.batches, batcher.batches_inline, executor.calls - before, answers

    return asyncio.run(main())


def test_a_batch_of_a_fast_model_is_predicted_on_the_loop_by_its_own_time() -> None:
    # 0.05 ms a row of its own (4 ms more in the worker, waiting): 8 rows, 0.4 ms < 1 ms
    batches, on_loop, executor_calls, answers = _batches_on_loop(0.00005)
    assert batches == [8, 8, 8] and on_loop == 3 and executor_calls == 0
    assert answers == [[2 * i] for i in range(8)] * 3


def test_batches_under_load_from_the_start_move_to_the_loop() -> None:
    from forgeml.serve._batcher import INLINE_AFTER

    async def main() -> tuple[list[int], int, int]:
        clock, cpu = FakeClock(), FakeClock()
        runner = TwoClocks(clock, cpu, 0.00005)
        executor = CountingThreads()
        batcher = Batcher(runner, executor, clock=clock, own_clock=cpu)
        batcher.start()
        for _ in range(INLINE_AFTER + 3):  # never a lone request, never a small batch
            await asyncio.gather(*(batcher.predict(rows(i), 1) for i in range(16)))
        await batcher.stop()
        executor.shutdown()
        return runner.batches, batcher.batches_inline, executor.calls

    batches, on_loop, executor_calls = asyncio.run(main())
    assert batches == [16] * (INLINE_AFTER + 3)
    assert executor_calls == INLINE_AFTER and on_loop == 3


def test_a_batch_predicted_over_inline_ms_goes_to_the_worker() -> None:
    # 0.2 ms a row of its own: a lone row may run on the loop, a batch of 8 (1.6 ms) not
    batches, on_loop, executor_calls, answers = _batches_on_loop(0.0002)
    assert batches == [8, 8, 8] and on_loop == 0 and executor_calls == 3
    assert answers == [[2 * i] for i in range(8)] * 3


def test_a_failing_batch_on_the_loop_is_retried_one_request_at_a_time() -> None:
    from forgeml.serve._batcher import INLINE_AFTER

    async def main() -> tuple[list[Any], list[int], int]:
        clock = FakeClock()
        runner = TimedRunner(clock, a=0.00001, b=0.0001)
        executor = CountingInline()
        batcher = Batcher(runner, executor, clock=clock, own_clock=clock)
        batcher.start()
        for i in range(INLINE_AFTER):
            await batcher.predict(rows(i), 1)
        del runner.batches[:]
        before = executor.calls
        got = await asyncio.gather(
            *(batcher.predict(rows(v), 1) for v in (1, None, 3)), return_exceptions=True
        )
        await batcher.stop()
        return got, runner.batches, executor.calls - before

    got, batches, executor_calls = asyncio.run(main())
    assert got[0][0] == [2] and isinstance(got[1], ValueError) and got[2][0] == [6]
    assert batches == [1, 1] and executor_calls == 0  # the batch of 3 failed before counting
