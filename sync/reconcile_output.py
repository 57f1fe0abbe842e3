"""Reconcile reports as a table (people), JSON (scripts) or CSV (spreadsheets).

Findings are streamed from the reconciler's scratch tables, so a report of any size is written
without holding it in memory.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from sync.reconcile_findings import (
    CLASS_TITLES,
    CLASSES,
    EntityResult,
    Finding,
    ReconcileReport,
)

FORMATS = ("table", "json", "csv")
DETAIL_PAGE = 200  # rows per printed details table
FindingsOf = Callable[[str, str], Iterable[Finding]]
CSV_COLUMNS = ("entity", "phase", "class", "crm_id", "erp_id", "field", "crm_value", "erp_value", "direction",
               "repair", "note")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def repair_text(f: Finding) -> str:
    """A short description of what --apply does (did) about a finding."""
    r = f.repair
    if r is None:
        return "report only"
    if r.action == "sync":
        return f"{'sync the deletion' if r.deleted else 'sync'} from {r.source}"
    return {"link": f"link, then sync from {r.source}", "relink": f"drop link, sync {r.source} record again",
            "unlink": "drop link", "archive": f"sync the deletion from {r.source}"}.get(r.action, r.action)


def _phases(report: ReconcileReport, e: EntityResult) -> list[tuple[str, str]]:
    """(title, scratch phase) of the finding lists to print for one entity."""
    if not report.applied:
        return [("found", "found")]
    return [("found", "found"), ("after repair", e.remaining_phase)]


# ---------------------------------------------------------------------------------- table
def write_table(report: ReconcileReport, findings: FindingsOf, console: Console) -> None:
    """Summary (counts per class per entity), then the details, then repairs and API calls."""
    title = "reconcile --apply" if report.applied else "reconcile (dry run: nothing written)"
    if report.since:
        title += f" - records changed since {report.since}"
    summary = Table(title=title)
    summary.add_column("entity")
    if report.applied:
        summary.add_column("when")
    for cls in CLASSES:
        summary.add_column(CLASS_TITLES[cls], justify="right")
    for e in report.entities:
        rows = [("found", e.found)] + ([("after repair", e.final)] if report.applied else [])
        for when, counts in rows:
            cells = [e.entity] + ([when] if report.applied else [])
            summary.add_row(*cells, *(str(counts.get(cls, 0)) for cls in CLASSES))
    summary.caption = "records read: " + "; ".join(
        f"{e.entity} " + ", ".join(f"{system} {n}" for system, n in e.read.items()) for e in report.entities)
    console.print(summary)
    for e in report.entities:
        for when, phase in _phases(report, e):
            _details(console, e.entity, when, (f for f in findings(e.entity, phase) if f.cls != "in_sync"))
        if report.applied and e.repairs:
            done = ", ".join(f"{k} {v}" for k, v in sorted(e.repairs.items()))
            sync = ", ".join(f"{k} {v}" for k, v in sorted(e.sync_counts.items()))
            console.print(f"{e.entity}: repairs {done}" + (f"; sync: {sync}" if sync else ""), highlight=False)
    calls = "; ".join(f"{system}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                      for system, kinds in report.api_calls.items() if kinds)
    console.print(f"API calls: {calls or 'none'}   ({report.seconds:.1f} s)", highlight=False)
    if report.drift:
        verb = "remains" if report.applied else "found"
        hint = "" if report.applied else "; `concord reconcile --apply` repairs what can be repaired"
        console.print(f"[bold yellow]drift {verb}[/]: {report.drift} finding(s){hint}")
    else:
        console.print("[bold green]in sync[/]")


def _details(console: Console, entity: str, when: str, findings: Iterator[Finding]) -> None:
    table: Table | None = None
    rows = 0
    for f in findings:
        if table is None or rows >= DETAIL_PAGE:
            if table is not None:
                console.print(table)
            table = Table(title=f"{entity}: {when}", title_justify="left")
            for col in ("class", "crm id", "erp id", "field", "crm value", "erp value", "repair", "note"):
                table.add_column(col, overflow="fold")
            rows = 0
        for cells in _rows(f):
            table.add_row(*cells)
            rows += 1
    if table is not None:
        console.print(table)


def _rows(f: Finding) -> list[list[str]]:
    crm = f.crm_id or ", ".join(f.crm_ids)
    erp = f.erp_id or ", ".join(f.erp_ids)
    first = [CLASS_TITLES.get(f.cls, f.cls), crm, erp]
    if f.cls == "duplicate":
        return [first + [f.key or "", f.value or "", "", repair_text(f), f.note]]
    if not f.fields:
        return [first + ["", "", "", repair_text(f), f.note]]
    out = []
    for i, d in enumerate(f.fields):
        head = first if i == 0 else ["", "", ""]
        out.append(head + [d.field, _text(d.crm), _text(d.erp), repair_text(f) if i == 0 else "",
                           f.note if i == 0 else ""])
    return out


# ---------------------------------------------------------------------------------- json
def write_json(report: ReconcileReport, findings: FindingsOf, stream: IO[str], *, exit_code: int) -> None:
    """One JSON document, written as a stream: run facts, then per entity counts and findings."""
    head = {"dry_run": not report.applied, "applied": report.applied, "since": report.since, "exit_code": exit_code,
            "drift": report.drift, "seconds": round(report.seconds, 3), "api_calls": report.api_calls,
            "api_calls_by_phase": report.api_calls_by_phase}
    stream.write(json.dumps(head, sort_keys=True)[:-1] + ', "entities": [')
    for n, e in enumerate(report.entities):
        facts = {"entity": e.entity, "read": e.read, "found": _counts(e.found),
                 "remaining": _counts(e.final) if report.applied else None,
                 "repairs": dict(e.repairs), "sync": e.sync_counts, "seconds": round(e.seconds, 3)}
        stream.write(("," if n else "") + "\n" + json.dumps(facts, sort_keys=True)[:-1])
        for key, phase in [("findings", "found")] + ([("remaining_findings", e.remaining_phase)]
                                                     if report.applied else []):
            stream.write(f', "{key}": [')
            for i, f in enumerate(findings(e.entity, phase)):
                stream.write(("," if i else "") + "\n  " + json.dumps(f.to_json(), sort_keys=True, default=str))
            stream.write("]")
        stream.write("}")
    stream.write("\n]}\n")


def _counts(counts: Any) -> dict[str, int]:
    return {cls: int(counts.get(cls, 0)) for cls in CLASSES}


# ---------------------------------------------------------------------------------- csv
def write_csv(report: ReconcileReport, findings: FindingsOf, stream: IO[str]) -> None:
    """One row per differing field (one per finding without fields); in-sync pairs left out."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for e in report.entities:
        for when, phase in _phases(report, e):
            for f in findings(e.entity, phase):
                if f.cls == "in_sync":
                    continue
                crm = f.crm_id or " ".join(f.crm_ids)
                erp = f.erp_id or " ".join(f.erp_ids)
                base = [e.entity, when, f.cls, crm, erp]
                if f.cls == "duplicate":
                    writer.writerow(base + [f.key, f.value, "", "", repair_text(f), f.note])
                elif not f.fields:
                    writer.writerow(base + ["", "", "", "", repair_text(f), f.note])
                for d in f.fields:
                    writer.writerow(base + [d.field, _text(d.crm), _text(d.erp), d.direction, repair_text(f), f.note])
