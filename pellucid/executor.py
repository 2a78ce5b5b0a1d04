"""Where a run's independent pieces of work run: one abstraction for every stage.

An :class:`Executor` maps a function over argument tuples and returns the results in order.
:class:`LocalExecutor` runs them in this process or in ``n_jobs`` local processes (joblib);
:class:`DaskExecutor` runs them on a Dask cluster. The frontier's fits and the stability
refits go through :meth:`Executor.map`; the attributions and the local explanations, which
split one table into pieces, use the Dask client of a :class:`DaskExecutor`
(:mod:`pellucid.cluster`) and run in this process otherwise. ``n_jobs`` and ``--dask`` pick the
executor (:func:`make_executor`). Results never depend on the executor: every piece is seeded
by what it is, not by where or when it runs.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable, Sequence

from joblib import Parallel, delayed


class Executor:
    """Runs independent calls; see :class:`LocalExecutor` and :class:`DaskExecutor`."""

    #: The Dask client work goes to, or None for local work.
    client: Any = None

    def map(self, fn: Callable[..., Any], calls: Iterable[Sequence[Any]]) -> list[Any]:
        """``[fn(*args) for args in calls]``, in order, run where this executor runs work."""
        raise NotImplementedError

    def share(self, obj: Any) -> Any:
        """``obj`` as an argument of many calls: sent once where that costs (a Dask cluster),
        the object itself locally."""
        return obj

    def backend(self) -> dict[str, Any]:
        """Where the work ran, for the report's ``run.backend``."""
        raise NotImplementedError

    def runs_elsewhere(self) -> bool:
        """Whether :meth:`map` runs its calls outside this process (so that this process can
        go on with other work while it waits)."""
        return self.client is not None

    def local_processes(self) -> int | None:
        """How many worker processes on this machine's cores :meth:`map` keeps busy; None when
        it runs its calls in this process or on a cluster's workers."""
        return None

    def close(self) -> None:
        """Release what this executor started (nothing, unless it started a cluster)."""


class LocalExecutor(Executor):
    """Calls in this process (``n_jobs`` None or 1) or in ``n_jobs`` local processes (joblib;
    -1: one per core)."""

    def __init__(self, n_jobs: int | None = None) -> None:
        self.n_jobs = n_jobs

    def map(self, fn: Callable[..., Any], calls: Iterable[Sequence[Any]]) -> list[Any]:
        if self.n_jobs in (None, 1):
            return [fn(*args) for args in calls]
        return list(Parallel(n_jobs=self.n_jobs)(delayed(fn)(*args) for args in calls))

    def backend(self) -> dict[str, Any]:
        return {"name": "local"} if self.n_jobs in (None, 1) else {"name": "local", "processes": self.n_jobs}

    def runs_elsewhere(self) -> bool:
        return self.n_jobs not in (None, 1)

    def local_processes(self) -> int | None:
        if not self.runs_elsewhere():
            return None
        return self.n_jobs if self.n_jobs > 0 else max(1, cores() + 1 + self.n_jobs)  # joblib's -1: one per core

    def __repr__(self) -> str:
        return f"LocalExecutor(n_jobs={self.n_jobs})"


class DaskExecutor(Executor):
    """Calls as tasks on a Dask cluster: a ``distributed.Client``, or a spec that
    :func:`pellucid.cluster.connect` accepts (``"local:2"``, ``"tcp://host:8786"``); a cluster
    started from a spec is closed by :meth:`close`."""

    def __init__(self, client: Any) -> None:
        from . import cluster

        self._own = not hasattr(client, "submit")
        self.client = cluster.connect(client)

    def map(self, fn: Callable[..., Any], calls: Iterable[Sequence[Any]]) -> list[Any]:
        futures = [self.client.submit(fn, *args, pure=False) for args in calls]
        return list(self.client.gather(futures))

    def share(self, obj: Any) -> Any:
        return self.client.scatter(obj, broadcast=True, hash=False)

    def backend(self) -> dict[str, Any]:
        from . import cluster

        return cluster.backend(self.client)

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"


class OnThread:
    """``fn()`` on a thread of this process, started at once, while the caller goes on:
    :meth:`result` waits for it and returns its value or raises its error; :attr:`seconds` is
    its wall time once it has ended (None before)."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _work(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - self.started

    def join(self) -> None:
        """Wait for ``fn`` to end, whatever it gave."""
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_CONTROLLER = None


def one_blas_thread():
    """One BLAS thread (a context manager): sums and products are then the same whatever the
    thread settings of the machine or the process (a worker's, the run's own), and tall-thin
    products run no faster on more threads anyway."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def stop_local_workers() -> None:
    """Stop the worker processes that local executors started (joblib's reusable pool of
    loky processes), killing the work they are on, and wait until they are gone: for a run
    that was interrupted, so that no worker outlives it, holds its output streams open or
    leaves its semaphores behind. Nothing happens where no pool was started."""
    from joblib.externals.loky import reusable_executor

    pool = getattr(reusable_executor, "_executor", None)
    if pool is not None:
        pool.shutdown(wait=True, kill_workers=True)


def make_executor(n_jobs: int | None = None, client: Any = None) -> Executor:
    """The executor the options ask for: a Dask cluster when ``client`` is given (``--dask``),
    local processes otherwise (``n_jobs``, ``--n-jobs``)."""
    return DaskExecutor(client) if client is not None else LocalExecutor(n_jobs)


def as_executor(executor: Executor | None, n_jobs: int | None = None) -> Executor:
    """``executor``, or a :class:`LocalExecutor` with ``n_jobs`` processes when it is None."""
    return executor if executor is not None else LocalExecutor(n_jobs)
