"""``python -m bench.compare A.json B.json``: what changed between two results files.

Rows are matched by id and position within the id (P0 has one row per level, P8 two per
service). For each, the baocao and baseline figures of A and B, whether the goal's verdict
changed, and how many of B's medians fall within the range (min–max of the repetitions) A
reports for the same figure: two runs of the same code should agree within their spread. The
ratios to a baseline measured beside them count as figures too, and they are the ones to
read first: the machine's drift between runs moves a figure and its baseline together.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from bench.harness import Row, render_table


def keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    seen: dict[str, int] = {}
    out = {}
    for row in rows:
        n = seen.get(row["id"], 0)
        seen[row["id"]] = n + 1
        out[(row["id"], n)] = row
    return out


SPREAD = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?)\s*[^\s(;–]*\s*\((-?\d[\d,]*(?:\.\d+)?)–(-?\d[\d,]*(?:\.\d+)?)\)"
)
"""A figure as the table writes it: ``median unit (min–max)``, e.g. ``41 req/s (40–42)``."""


def spreads(text: str) -> list[tuple[float, float, float]]:
    """Each ``median (min–max)`` of a cell, in order."""
    return [
        tuple(float(n.replace(",", "")) for n in match.groups())  # type: ignore[misc]
        for match in SPREAD.finditer(text)
    ]


def within(a: str, b: str) -> tuple[int, int]:
    """How many of ``b``'s medians lie within ``a``'s ranges, out of the figures both have."""
    pairs = list(zip(spreads(a), spreads(b), strict=False))
    return sum(1 for (_, low, high), (median, _, _) in pairs if low <= median <= high), len(pairs)


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "—"}[met]


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[Row]:
    rows_a, rows_b = keyed(a["rows"]), keyed(b["rows"])
    table = []
    for key in sorted(set(rows_a) | set(rows_b), key=lambda k: (int(k[0].lstrip("P")), k[1])):
        old, new = rows_a.get(key), rows_b.get(key)
        what = (new or old or {})["what"]
        met_old = verdict(old["met"]) if old else "absent"
        met_new = verdict(new["met"]) if new else "absent"
        inside, of = (0, 0)
        if old and new:
            for field in ("baocao", "baseline", "ratio"):
                n, m = within(old[field], new[field])
                inside, of = inside + n, of + m
        table.append(
            Row(
                key[0],
                what,
                f"{old['baocao'] if old else '—'}  →  {new['baocao'] if new else '—'}",
                f"{old['baseline'] if old else '—'}  →  {new['baseline'] if new else '—'}",
                f"{old['ratio'] if old else '—'}  →  {new['ratio'] if new else '—'}",
                (new or old or {}).get("goal", "—"),
                None,
                {"met": f"{met_old} → {met_new}", "within": f"{inside} of {of}" if of else "—"},
            )
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (args.before, args.after))
    for label, doc in (("A", a), ("B", b)):
        env = doc["environment"]
        print(
            f"{label}: {doc['started_at']} on {env['hostname']} ({env['cpu_count']} CPUs), "
            f"commit {env['git']['commit'][:10]}{' (dirty)' if env['git']['dirty'] else ''}"
        )
    rows = compare(a, b)
    text = render_table(rows)
    # The last column carries the verdicts "before → after" rather than one verdict.
    lines = text.splitlines()
    lines[0] = lines[0].replace("| met", "| met A → B | B's medians within A's range")
    out = [lines[0], lines[1] + "---|"]
    for line, row in zip(lines[2:], rows, strict=True):
        out.append(line.rsplit("|", 2)[0] + f"| {row.figures['met']} | {row.figures['within']} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
