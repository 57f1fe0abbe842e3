"""Mapping large passes in a worker process, in parallel with the writes.

An initial sync is CPU-bound in one process: reading native records into canonical content
(transforms, phone numbers, validation) is about a fifth of it, and the GIL keeps a thread from
doing it at the same time as the writes. A worker process (``python -m sync.map_workers``)
compiles the same mapping file (from the parsed YAML the parent compiled) and maps whole pages;
the parent only pickles records out and canonical dicts back over the worker's stdin/stdout.

It is started only when a pass turns out large, and the parent keeps mapping in its own thread
until the worker is ready, so small passes never pay its start-up. A record the worker cannot map
is mapped again in the parent, which raises the usual error with its details. The worker ends
when its stdin closes, so it never outlives the sync process, even one killed with SIGKILL.
(A plain subprocess rather than multiprocessing: spawn re-imports the caller's main module and a
fork would copy a process with threads and open connections.)
"""
from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any

import structlog

from connectors.base import NativeRecord
from sync.mapping import EntityMapping, MappingFile, compile_doc
from sync.merge import flat_canonical
from sync.transforms import phone_memo_add, phone_memo_taken, phone_memo_track

log = structlog.get_logger(__name__)

# A pass that has read this many records is worth a worker (start-up is about a second of the
# other core; a page of 200 records maps in ~10 ms).
START_AFTER = 2_000

_HEADER = struct.Struct(">Q")
_READY = "ready"


class WorkerGone(RuntimeError):
    """The worker process ended or answered out of turn."""


def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("the other end closed the pipe")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other end closed the pipe mid-message")
    return pickle.loads(data)  # noqa: S301 - our own process on the other end of a private pipe


def map_page(em: EntityMapping, datas: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Flat canonical content of each native record; None where mapping raised."""
    out: list[dict[str, Any] | None] = []
    for data in datas:
        try:
            out.append(flat_canonical(em, data))
        except Exception:  # noqa: BLE001 - the parent maps it again and reports the real error
            out.append(None)
    return out


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The worker's loop: a (parsed mapping file, entity) message, then pages until stdin closes."""
    from sync.logging import configure
    configure(level="warning", fmt="json")  # stderr, shared with the parent; stdout is the pipe
    doc, entity = _receive(stdin)
    em = compile_doc(doc).entity(entity)
    phone_memo_track()
    _send(stdout, _READY)
    while True:
        try:
            datas = _receive(stdin)
        except EOFError:
            return 0
        mapped = map_page(em, datas)
        _send(stdout, (mapped, phone_memo_taken()))


class MapWorker:
    """One worker process mapping pages of one entity's records (see the module docstring)."""

    def __init__(self, mapping: MappingFile, entity: str) -> None:
        self._doc = mapping.doc
        self._entity = entity
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False

    @staticmethod
    def wanted(workers: int) -> bool:
        """Whether a worker can help: asked for, a second core to run on, and POSIX pipes."""
        return workers > 0 and (os.cpu_count() or 1) > 1 and os.name == "posix"

    def start(self) -> None:
        """Start the worker in the background (returns at once)."""
        if self._proc is not None or self._doc is None:
            return
        self._proc = subprocess.Popen([sys.executable, "-m", "sync.map_workers"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, close_fds=True)
        try:
            _send(self._proc.stdin, (self._doc, self._entity))  # type: ignore[arg-type]
        except OSError as exc:
            log.warning("map_worker.start_failed", entity=self._entity, error=repr(exc))
            self.close()
            return
        log.info("map_worker.starting", entity=self._entity, pid=self._proc.pid)

    def ready(self) -> bool:
        """Whether the worker has compiled its mapping (never blocks)."""
        if self._ready:
            return True
        proc = self._proc
        if proc is None or proc.stdout is None:
            return False
        if not select.select([proc.stdout], [], [], 0)[0]:
            return False
        try:
            self._ready = _receive(proc.stdout) == _READY
        except (EOFError, OSError):
            self._ready = False
        if not self._ready:
            log.warning("map_worker.not_started", entity=self._entity, exit_code=proc.poll())
            self.close()
        return self._ready

    def map(self, datas: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Canonical content of each native record (None: map it in the caller for the error)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None or not self._ready:
            raise WorkerGone("the map worker is not running")
        try:
            _send(proc.stdin, list(datas))
            answer = _receive(proc.stdout)
        except (EOFError, OSError) as exc:
            raise WorkerGone(f"the map worker ended (exit code {proc.poll()})") from exc
        if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], list)
                and len(answer[0]) == len(datas)):
            raise WorkerGone("the map worker answered out of turn")
        out, phones = answer
        # The numbers it normalised: what the writes read back is computed here, from the same ones.
        phone_memo_add(phones)
        return out

    def close(self) -> None:
        """End the worker (closing its stdin) and wait for it: its CPU and memory count as the run's."""
        proc, self._proc, self._ready = self._proc, None, False
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class PageMapper:
    """Maps the pages a reader fetches: in its thread, or through a worker process once the pass
    has read :data:`START_AFTER` records and the worker is up."""

    def __init__(self, em: Any, worker: MapWorker | None) -> None:
        self.em = em
        self.worker = worker
        self.read = 0

    def map(self, records: Sequence[NativeRecord]) -> dict[int, tuple[NativeRecord, Any]]:
        """Each record's flat canonical content, or the exception mapping it raised (keyed by id())."""
        self.read += len(records)
        worker = self.worker
        if worker is None:
            return premap(self.em, records)
        if self.read >= START_AFTER:
            worker.start()
        if not worker.ready():
            return premap(self.em, records)
        try:
            mapped = worker.map([r.data for r in records])
        except Exception as exc:  # noqa: BLE001 - a broken worker: the thread maps, as for small passes
            log.warning("map_worker.failed", error=repr(exc)[:300])
            self.close()
            return premap(self.em, records)
        out = premap(self.em, [r for r, c in zip(records, mapped, strict=True) if c is None])
        for rec, c in zip(records, mapped, strict=True):
            if c is not None:
                out[id(rec)] = (rec, c)
        return out

    def close(self) -> None:
        """End the worker, if one was started."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def premap(em: Any, records: Sequence[NativeRecord]) -> dict[int, tuple[NativeRecord, Any]]:
    """Each record's flat canonical content, or the exception mapping it raised (keyed by id())."""
    out: dict[int, tuple[NativeRecord, Any]] = {}
    for rec in records:
        try:
            out[id(rec)] = (rec, flat_canonical(em, rec.data))
        except Exception as exc:  # noqa: BLE001 - raised where the record is processed, as before
            out[id(rec)] = (rec, exc)
    return out


if __name__ == "__main__":
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
