"""One object per process, such as a thread that serves the requests of one web worker."""

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """Made on first use; a forked child (a gunicorn worker, a Celery prefork child) makes its own
    rather than use its parent's copy, whose threads did not survive the fork."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._made: tuple[int, T] | None = None

    def get(self) -> T:
        made = self._made
        if made is not None and made[0] == os.getpid():
            return made[1]
        with self._lock:
            if self._made is None or self._made[0] != os.getpid():
                self._made = (os.getpid(), self._factory())
            return self._made[1]

    def existing(self) -> T | None:
        """This process's object if it has made one, without making it."""
        made = self._made
        return made[1] if made is not None and made[0] == os.getpid() else None

    def forget(self) -> T | None:
        """This process's object, no longer kept (the next ``get`` makes a new one)."""
        with self._lock:
            made, self._made = self._made, None
        return made[1] if made is not None and made[0] == os.getpid() else None
