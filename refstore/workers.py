"""A fixed set of worker threads that take their tasks from one source.

The fetch gives each object to a worker and lets a worker add tasks on the
way (the ranged parts of a large object, a retry). A thread pool with one
``submit`` per object costs several thread wake-ups per object: the caller
waits for a free slot, a worker is woken for each task, and the caller is
woken for each result. Here each worker pulls its next task itself, so an
object costs one uncontended lock; threads sleep only at the end, while
the last tasks may still add more.

A worker that finds nothing queued asks the ``idle`` hook for work before it
sleeps: the fetch uses it to split a large download still in progress
(:mod:`refstore.ranges`). Whoever makes such work available calls
:meth:`Workers.wake`, so that sleeping workers ask again.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Iterator

__all__ = ["Task", "Workers"]

log = logging.getLogger(__name__)

Task = Callable[[], None]


class Workers:
    """Run ``tasks`` on ``count`` threads; tasks may ``add`` more while they run.

    A task must not raise: each reports its own outcome. Added tasks go
    before the remaining ones, so a large object's parts start while its
    download is still young.
    """

    def __init__(
        self, count: int, name: str, idle: Callable[[], Task | None] | None = None
    ) -> None:
        if count < 1:
            raise ValueError(f"workers must be 1 or more, not {count}")
        self._count = count
        self._name = name
        self._idle = idle
        self._added: collections.deque[Task] = collections.deque()
        self._tasks: Iterator[Task] = iter(())
        self._changed = threading.Condition(threading.Lock())
        self._busy = 0
        self._stopped = False
        # Counts add() and wake() calls: a worker that asked the idle hook
        # while one happened asks again instead of sleeping through it.
        self._news = 0

    def run(self, tasks: Iterable[Task]) -> None:
        """Run every task, and every task they add; return when all are done.

        An interrupt (Ctrl-C) stops handing out tasks, waits for the running
        ones and is raised again.
        """
        self._tasks = iter(tasks)
        threads = [
            threading.Thread(target=self._work, name=f"{self._name}-{n}", daemon=True)
            for n in range(self._count)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:
            self.stop()
            for thread in threads:
                thread.join()
            raise

    def add(self, task: Task) -> None:
        """Queue a task ahead of the remaining ones (from a running task)."""
        with self._changed:
            self._added.append(task)
            self._news += 1
            self._changed.notify()

    def wake(self) -> None:
        """The idle hook may have work now: sleeping workers ask it again."""
        with self._changed:
            self._news += 1
            self._changed.notify_all()

    def stop(self) -> None:
        """Hand out no more tasks; the running ones finish."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _work(self) -> None:
        while (task := self._next()) is not None:
            try:
                task()
            except Exception:  # a bug in the task: keep the other tasks going
                log.exception("a %s task failed unexpectedly", self._name)
            finally:
                self._finished()

    def _next(self) -> Task | None:
        with self._changed:
            while not self._stopped:
                task = self._added.popleft() if self._added else None
                if task is None:
                    task = next(self._tasks, None)
                if task is None and self._idle is not None:
                    news = self._news
                    task = self._ask_idle()
                    if task is None and news != self._news:
                        continue
                if task is not None:
                    self._busy += 1
                    return task
                if self._busy == 0:
                    # Nothing left, and no running task can add more.
                    self._changed.notify_all()
                    return None
                self._changed.wait()
            return None

    def _ask_idle(self) -> Task | None:
        """The idle hook's answer, asked without holding the lock."""
        assert self._idle is not None
        self._changed.release()
        try:
            return self._idle()
        except Exception:  # a bug in the hook: this worker sleeps instead
            log.exception("the %s idle hook failed unexpectedly", self._name)
            return None
        finally:
            self._changed.acquire()

    def _finished(self) -> None:
        with self._changed:
            self._busy -= 1
            if self._busy == 0:
                self._changed.notify_all()
