"""The worker threads the fetch runs on."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from refstore.workers import Task, Workers


def test_every_task_runs_once() -> None:
    done: list[int] = []
    lock = threading.Lock()

    def task(n: int) -> Task:
        def run() -> None:
            with lock:
                done.append(n)

        return run

    Workers(4, "test").run(task(n) for n in range(500))

    assert sorted(done) == list(range(500))


def test_added_tasks_run_in_parallel_even_when_they_are_the_only_work() -> None:
    # One task adds four that can finish only together: the idle workers must
    # wait for added work instead of leaving when the source is empty.
    barrier = threading.Barrier(4, timeout=10)
    passed: list[str] = []
    workers = Workers(4, "test")

    def part() -> None:
        barrier.wait()
        passed.append(threading.current_thread().name)

    def large_object() -> None:
        time.sleep(0.05)  # the other workers have found the source empty
        for _ in range(4):
            workers.add(part)

    workers.run([large_object])

    assert len(passed) == 4
    assert len(set(passed)) == 4


def test_added_tasks_come_before_the_remaining_ones() -> None:
    order: list[str] = []
    workers = Workers(1, "test")

    def first() -> None:
        order.append("first")
        workers.add(lambda: order.append("added"))

    workers.run([first, lambda: order.append("second")])

    assert order == ["first", "added", "second"]


def test_a_failing_task_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []

    def broken() -> None:
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="refstore.workers"):
        Workers(2, "test").run([broken, lambda: done.append(1), broken])

    assert done == [1]
    assert caplog.text.count("task failed unexpectedly") == 2


def test_stop_hands_out_no_more_tasks() -> None:
    workers = Workers(1, "test")
    done: list[int] = []

    def stopping() -> None:
        done.append(0)
        workers.stop()

    workers.run([stopping, lambda: done.append(1)])

    assert done == [0]


def test_at_least_one_worker_is_needed() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        Workers(0, "test")


def test_an_idle_worker_runs_what_the_idle_hook_gives() -> None:
    # The hook hands out three extra tasks, one per call, and then nothing.
    extra = [lambda: ran.append("extra")] * 3
    ran: list[str] = []
    lock = threading.Lock()

    def idle() -> Task | None:
        with lock:
            return extra.pop() if extra else None

    Workers(2, "test", idle=idle).run([lambda: ran.append("queued")])

    assert sorted(ran) == ["extra", "extra", "extra", "queued"]


def test_wake_makes_sleeping_workers_ask_the_idle_hook_again() -> None:
    # The only task makes work available through the hook once the other
    # worker has already asked and gone to sleep; without wake() the work
    # would wait for the task to end, and the barrier would time out.
    barrier = threading.Barrier(2, timeout=5)
    offered: list[Task] = []
    asked = threading.Event()
    passed: list[str] = []
    workers: Workers

    def meet() -> None:
        barrier.wait()
        passed.append(threading.current_thread().name)

    def idle() -> Task | None:
        asked.set()
        return offered.pop() if offered else None

    def first() -> None:
        asked.wait(10)
        time.sleep(0.05)  # the other worker is asleep by now
        offered.append(meet)
        workers.wake()
        meet()

    workers = Workers(2, "test", idle=idle)
    workers.run([first])

    assert len(set(passed)) == 2


def test_a_failing_idle_hook_is_logged_and_the_tasks_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []

    def idle() -> Task | None:
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="refstore.workers"):
        Workers(2, "test", idle=idle).run([lambda: done.append(1)] * 3)

    assert done == [1, 1, 1]
    assert "idle hook failed unexpectedly" in caplog.text
