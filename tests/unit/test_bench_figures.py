"""The bench's figures: ratios of paired repetitions, and how two results files are compared."""

from __future__ import annotations

import math

import pytest

from bench.compare import spreads, within
from bench.harness import Spread, ratio_text, times_text

pytestmark = pytest.mark.unit


def test_a_paired_ratio_is_taken_repetition_by_repetition() -> None:
    # The machine ran slower in the second repetition: both figures fell, their ratio did not.
    share = Spread.paired([50.0, 25.0, 48.0], [200.0, 100.0, 160.0])
    assert share.samples == (0.25, 0.25, 0.3)
    assert (share.median, share.low, share.high) == (0.25, 0.25, 0.3)
    assert ratio_text(share) == "25 % (25–30)"


def test_a_zero_baseline_is_no_ratio() -> None:
    assert Spread.paired([1.0, 2.0], [0.0, 4.0]).samples == (0.5,)
    assert ratio_text(Spread.paired([1.0], [0.0])) == "n/a"
    assert math.isnan(Spread.paired([], []).median)


def test_paired_figures_must_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="shorter"):
        Spread.paired([1.0, 2.0], [1.0])


def test_a_factor_is_written_with_its_range() -> None:
    assert times_text(Spread.of([1.41, 1.38, 1.5])) == "1.41× (1.38–1.50)"
    assert times_text(Spread.of([18.7, 17.0, 21.0]), 1) == "18.7× (17.0–21.0)"


def test_compare_reads_every_figure_of_a_cell_with_its_range() -> None:
    cell = "49 req/s (48–53) at c=32; 1,182 ev/s (1,147–1,194) raw"
    assert spreads(cell) == [(49.0, 48.0, 53.0), (1182.0, 1147.0, 1194.0)]
    assert spreads("27 % (25–29); 18.7× (17.0–21.0) reconnect") == [
        (27.0, 25.0, 29.0),
        (18.7, 17.0, 21.0),
    ]


def test_compare_counts_the_medians_within_the_other_runs_range() -> None:
    assert within("27 % (25–29)", "29 % (26–31)") == (1, 1)
    assert within("27 % (25–29)", "30 % (29–31)") == (0, 1)
    assert within("1.41× (1.38–1.50); 2.0× (1.9–2.1)", "1.45× (1.40–1.60)") == (1, 1)
    assert within("0.64× of 0", "0.71× of 0") == (0, 0)
