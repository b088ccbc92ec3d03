"""What every benchmark shares: progress lines, statistics, the result row and the table."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

COLUMNS = ("id", "what", "baocao", "baseline", "ratio", "goal", "met")

_started = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr: the table on stdout stays clean for copying."""
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Spread:
    """The median of the repetitions and their range: one figure that says how sure it is."""

    median: float
    low: float
    high: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        clean = [v for v in values if not math.isnan(v)]
        if not clean:
            return cls(math.nan, math.nan, math.nan, ())
        return cls(statistics.median(clean), min(clean), max(clean), tuple(clean))

    @classmethod
    def paired(cls, figures: Sequence[float], baselines: Sequence[float]) -> Spread:
        """The ratios of figures measured side by side, repetition by repetition.

        This shared machine runs some ±30 % faster or slower from one run to the next, and
        that drift moves a figure and its baseline together: their ratio, which is what
        the goals judge, holds still where neither figure does.
        """
        pairs = zip(figures, baselines, strict=True)
        return cls.of([f / b if b else math.nan for f, b in pairs])

    def text(self, unit: str, digits: int = 1) -> str:
        if math.isnan(self.median):
            return "n/a"
        fmt = f"{{:.{digits}f}}"
        middle = fmt.format(self.median)
        return f"{middle} {unit} ({fmt.format(self.low)}–{fmt.format(self.high)})"


@dataclass
class Row:
    """One line of the table; ``figures`` keeps the numbers behind it for the results file."""

    id: str
    what: str
    baocao: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    met: bool | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        met = {True: "yes", False: "NO", None: "—"}[self.met]
        return [self.id, self.what, self.baocao, self.baseline, self.ratio, self.goal, met]

    def as_json(self) -> dict[str, Any]:
        return _finite(asdict(self))


def failed_row(bench_id: str, what: str, error: BaseException) -> Row:
    """A benchmark that could not run still gets its line, saying why."""
    return Row(
        bench_id,
        what,
        f"did not run: {type(error).__name__}: {error}"[:160],
        met=False,
        figures={"error": f"{type(error).__name__}: {error}"},
    )


def render_table(rows: Sequence[Row]) -> str:
    cells = [list(COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def ratio_text(value: float | Spread) -> str:
    """A share in percent; with its range when it comes from paired repetitions."""
    if isinstance(value, Spread):
        if math.isnan(value.median):
            return "n/a"
        return f"{value.median * 100:.0f} % ({value.low * 100:.0f}–{value.high * 100:.0f})"
    return "n/a" if math.isnan(value) else f"{value * 100:.0f} %"


def times_text(value: Spread, digits: int = 2) -> str:
    """A factor such as ``1.41× (1.38–1.50)``."""
    if math.isnan(value.median):
        return "n/a"
    fmt = f"{{:.{digits}f}}"
    return f"{fmt.format(value.median)}× ({fmt.format(value.low)}–{fmt.format(value.high)})"


def _finite(value: Any) -> Any:
    """JSON has no NaN: missing figures are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
