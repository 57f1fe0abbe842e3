"""Mapping large passes in a worker process, in parallel with the writes.

An initial sync is CPU-bound in one process: reading native records into canonical content
(transforms, phone numbers, validation) is about a fifth of it, and the GIL keeps a thread from
doing it at the same time as the writes. A spawned worker compiles the same mapping file (from the
parsed YAML the parent compiled) and maps whole pages; the parent only pickles records out and
canonical dicts back. It is started only when a pass turns out large, and the parent keeps mapping
in its own thread until the worker is ready, so small passes never pay its start-up. A record the
worker cannot map is mapped again in the parent, which raises the usual error with its details.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import structlog

from sync.mapping import EntityMapping, MappingFile, compile_doc
from sync.merge import flat_canonical

log = structlog.get_logger(__name__)

# A pass that has read this many records is worth a worker (start-up is about a second of the
# other core; a page of 200 records maps in ~10 ms).
START_AFTER = 2_000

_WORKER: EntityMapping | None = None


def _init(doc: Any, entity: str, log_level: str) -> None:
    global _WORKER
    from sync.logging import configure
    configure(level=log_level, fmt="json")  # stderr, as the parent's; stdout may carry --json output
    _WORKER = compile_doc(doc).entity(entity)


def _map_page(datas: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    assert _WORKER is not None
    out: list[dict[str, Any] | None] = []
    for data in datas:
        try:
            out.append(flat_canonical(_WORKER, data))
        except Exception:  # noqa: BLE001 - the parent maps it again and reports the real error
            out.append(None)
    return out


def _ready() -> bool:
    return _WORKER is not None


class MapWorker:
    """One worker process mapping pages of one entity's records (see the module docstring)."""

    def __init__(self, mapping: MappingFile, entity: str) -> None:
        self._doc = mapping.doc
        self._entity = entity
        self._pool: ProcessPoolExecutor | None = None
        self._warm: Future[bool] | None = None

    @staticmethod
    def wanted(workers: int) -> bool:
        """Whether a worker can help: asked for, and a second core to run on."""
        return workers > 0 and (os.cpu_count() or 1) > 1

    def start(self) -> None:
        """Start the worker in the background (returns at once)."""
        if self._pool is not None or self._doc is None:
            return
        # spawn: a clean interpreter, never a fork of a process with threads and open connections.
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init, initargs=(self._doc, self._entity, "warning"))
        self._warm = self._pool.submit(_ready)
        log.info("map_worker.starting", entity=self._entity)

    def ready(self) -> bool:
        """Whether the worker answers (False while it starts, or if it failed to)."""
        if self._warm is None or not self._warm.done():
            return False
        return self._warm.exception() is None and bool(self._warm.result())

    def map(self, datas: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Canonical content of each native record (None: map it in the caller for the error)."""
        assert self._pool is not None
        return self._pool.submit(_map_page, list(datas)).result()

    def close(self) -> None:
        """Stop the worker (waits for it: its CPU and memory count as the run's)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
