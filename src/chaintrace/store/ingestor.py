"""What every chain's ingestor shares: the writer lifecycle and the chain position.

:class:`ChainIngestor` is a context manager over one chain store: entering takes the store's write lock and
loads the ingestor's in-memory state (:meth:`_load`, chain specific); leaving flushes what is pending, releases
the lock, records the run time and, when something was committed, refreshes the workspace's catalog views.
It keeps the stored chain as ``start_height`` + the list of block hashes, and rolls the store back to a
height in one atomic commit. :meth:`commit` can run in a background thread (``background=True``), so the next
batch is built while this one is written; commits still happen one at a time and in order, and every
path that reads the store, rolls back or releases the lock waits for the one in flight first. A subclass sets :attr:`chain`, creates ``self.report`` (with ``commits``,
``seconds``, ``rolled_back_to``, ``tip_height``, ``tip_hash``) and implements :meth:`_load`, which must set
``start_height`` and ``hashes`` from the store.
"""
from __future__ import annotations

import threading
import time

from chaintrace.progress import NULL, Progress
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace


class ChainIngestor:
    chain = ""  # the chain store this ingestor writes ("btc", "eth")

    def __init__(self, workspace: Workspace, progress: Progress = NULL):
        self.ws = workspace
        self.store = workspace.chain(self.chain)
        self.progress = progress
        self.start_height: int | None = None
        self.hashes: list = []  # stored block hashes, from start_height on
        self._cm = None
        self._t0 = 0.0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._cm = self.store.writer()
        self._cm.__enter__()
        try:
            self._open()
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
                self.wait()
        finally:
            self._wait_quietly()  # never release the lock with a commit in flight
            self._cm.__exit__(exc_type, exc, tb)
            self.report.seconds = time.perf_counter() - self._t0
        if exc_type is None and self.report.commits:
            self.ws.refresh_catalog_views()

    def _open(self) -> None:
        """Called with the lock held: load the state (subclasses add checks)."""
        self._load()

    def _load(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Commit what is pending (nothing, for an ingestor that commits every batch as it is added)."""

    def commit(self, rows: dict, tip: dict, background: bool = False, **kw) -> None:
        """One atomic store commit of `rows` with the new `tip` ({"height", "hash"}), after the previous one;
        with `background`, in a thread (its error is raised by the next :meth:`wait`)."""
        self.wait()

        def run() -> None:
            self.store.commit(rows, tip=tip, **kw)
            self.report.commits += 1
            self.report.tip_height, self.report.tip_hash = tip["height"], tip["hash"]

        if not background:
            run()
            return

        def guarded() -> None:
            try:
                run()
            except BaseException as e:  # raised in the caller's thread by wait()
                self._error = e

        self._thread = threading.Thread(target=guarded, name=f"{self.chain}-commit")
        self._thread.start()

    def wait(self) -> None:
        """Wait for the commit in flight; raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def _wait_quietly(self) -> None:
        try:
            self.wait()
        except BaseException:
            pass  # an error is already on its way out; the store keeps its last whole commit

    # ------------------------------------------------------------------ chain position

    @property
    def tip_height(self) -> int | None:
        return None if self.start_height is None else self.start_height + len(self.hashes) - 1

    @property
    def tip_hash(self):
        return self.hashes[-1] if self.hashes else None

    def hash_at(self, height: int):
        if self.start_height is None or not self.start_height <= height <= self.tip_height:
            return None
        return self.hashes[height - self.start_height]

    def hash_text(self, h) -> str:
        """A stored hash as the store writes it (hashes kept in another form override this)."""
        return h

    def rollback(self, height: int) -> None:
        """Remove every block above `height` from the store (one atomic commit), then reload the state."""
        self.flush()
        self.wait()
        if self.tip_height is None or height >= self.tip_height:
            return
        if height < self.start_height - 1:
            raise StoreError(f"cannot roll back below the first stored block ({self.start_height})")
        tip = {"height": height, "hash": self.hash_text(self.hash_at(height))} if height >= self.start_height else None
        self.store.commit({}, tip=tip, truncate_above=height)
        self.report.commits += 1
        self.report.rolled_back_to = height
        self._load()
