"""Rendered search replies kept while the catalog does not change.

A reply is stored under its route and query string for one catalog generation
(``npfm.catalog.search_index.generation``, advanced by every flush that changes the
catalog), so a repeated search costs one small query instead of the search and facet
queries; the first request after any change computes its reply afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from npfm.catalog import search_index

#: Most replies kept (least recently used dropped first).
CACHE_ENTRIES = 2048


class ReplyCache:
    """Least-recently-used reply bodies of one catalog generation."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self.generation = -1
        self.replies: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, generation: int, key: tuple[str, str]) -> bytes | None:
        """The reply stored under ``key`` for ``generation``, or None."""
        with self.lock:
            if generation != self.generation:
                self.replies.clear()
                self.generation = generation
                return None
            body = self.replies.get(key)
            if body is not None:
                self.replies.move_to_end(key)
            return body

    def put(self, generation: int, key: tuple[str, str], body: bytes) -> None:
        """Keep ``body`` if the catalog is still at ``generation``."""
        with self.lock:
            if generation == self.generation:
                self.replies[key] = body
                while len(self.replies) > self.entries:
                    self.replies.popitem(last=False)


async def cached(cache: ReplyCache, sessions: sessionmaker[Session], key: tuple[str, str],
                 compute: Callable[[Session, int], bytes],
                 quick: Callable[[int], bool]) -> bytes:
    """The reply under ``key``: from ``cache`` when the catalog has not changed (one
    one-row query on the event loop, no session, no worker thread), else ``compute(session,
    generation)``, then kept. ``compute`` runs on the event loop when ``quick(generation)``
    (a millisecond of work: worker threads would only add switches and queueing under the
    GIL), else in a worker thread (building an index, running the embedding model)."""
    generation = search_index.generation(sessions.kw["bind"])
    body = cache.get(generation, key)
    if body is None:
        def work() -> bytes:
            with sessions() as session:
                return compute(session, generation)

        body = work() if quick(generation) else await run_in_threadpool(work)
        cache.put(generation, key, body)
    return body
