"""Specification of the protocol benchmark's figures (benchmarks/protocol_plots.py).

Covers: one visible curve per protocol with distinct (marker, line style) pairs in every
figure; a curve equal to another's drawn over it (hollow, larger, on top) and named in the
legend and caption; knob numbers that overlap neither each other nor the legend, on the
recorded run's crowded points; re-plotting a recorded folder (file names, the missing-file
error).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest

from benchmarks.protocol_plots import FIG4A, FIG4B, FIG6, accuracy_figure, context_figure, replot

RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "protocols" / "results.json"


def point(protocol: str, value: int, accuracy: float, total: float, critical: float) -> dict:
    knob = "n" if protocol == "self_consistency" else "beam_size"
    windows = {"1024": accuracy / 2, "2048": accuracy}
    return {
        "protocol": protocol,
        "knob": knob,
        "value": value,
        "accuracy": accuracy,
        "total_tokens": total,
        "critical_path_tokens": critical,
        "cumulative_accuracy": windows,
    }


def sweep() -> dict:
    """Five protocols; fork_full_context has exactly apr's points, as in the recorded run."""
    points = [
        point("serial", 1, 0.2, 200, 200),
        point("serial", 3, 0.5, 1200, 1200),
        point("self_consistency", 2, 0.55, 2700, 1900),
        point("self_consistency", 4, 0.6, 5400, 2400),
    ]
    for protocol in ("apr", "fork_full_context"):
        points += [point(protocol, 2, 0.55, 2000, 1260), point(protocol, 4, 0.68, 4400, 1660)]
    points += [point("broadcast", 2, 0.55, 1850, 1090), point("broadcast", 4, 0.68, 3600, 1300)]
    return {"points": points}


PROTOCOLS = ["serial", "self_consistency", "apr", "fork_full_context", "broadcast"]
FIGURES = {
    "fig4a": lambda r: accuracy_figure(r, "total_tokens", "total"),
    "fig6": lambda r: accuracy_figure(r, "critical_path_tokens", "critical path"),
    "fig4b": context_figure,
}


@pytest.mark.parametrize("make", FIGURES.values(), ids=FIGURES.keys())
def test_each_protocol_is_one_visible_curve_with_its_own_marker_and_line_style(make):
    lines = make(sweep()).axes[0].get_lines()
    assert [line.get_label().split(" ")[0].split(",")[0] for line in lines] == PROTOCOLS
    for line in lines:
        assert line.get_visible() and (line.get_alpha() is None or line.get_alpha() > 0)
        assert line.get_linewidth() > 0 and line.get_markersize() > 0
    pairs = {(line.get_marker(), line.get_linestyle()) for line in lines}
    assert len(pairs) == len(PROTOCOLS)


@pytest.mark.parametrize("make", [FIGURES["fig4a"], FIGURES["fig6"]], ids=["fig4a", "fig6"])
def test_a_curve_equal_to_another_is_drawn_over_it_hollow_and_named(make):
    fig = make(sweep())
    lines = {line.get_label().split(",")[0]: line for line in fig.axes[0].get_lines()}
    apr, fork = lines["apr"], lines["fork_full_context"]
    assert fork.get_zorder() > apr.get_zorder()
    assert fork.get_markerfacecolor() == "none" and fork.get_markersize() > apr.get_markersize()
    assert fork.get_label() == "fork_full_context, over apr"
    caption = " ".join(text.get_text() for text in fig.texts)
    assert "fork_full_context coincides with apr" in caption
    assert "broadcast coincides" not in caption  # same accuracy, different tokens: not a coincidence


def test_curves_that_differ_get_no_coincidence_note():
    results = sweep()
    for p in results["points"]:
        if p["protocol"] == "fork_full_context":
            p["total_tokens"] *= 1.5
    fig = accuracy_figure(results, "total_tokens", "total")
    assert "coincides" not in " ".join(text.get_text() for text in fig.texts)
    assert all(line.get_markerfacecolor() != "none" for line in fig.axes[0].get_lines())


@pytest.mark.parametrize("xkey", ["total_tokens", "critical_path_tokens"])
def test_knob_numbers_of_the_recorded_run_overlap_no_other_number_nor_the_legend(xkey):
    results = json.loads(RECORDED.read_text())
    fig = accuracy_figure(results, xkey, xkey)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    numbers = [text.get_window_extent(renderer) for text in ax.texts]
    shown = [p for p in results["points"] if p["protocol"] != "fork_full_context"]  # it repeats apr's
    assert len(numbers) == len(shown)
    assert not [(a, b) for a, b in combinations(numbers, 2) if a.overlaps(b)]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not [box for box in numbers if box.overlaps(legend)]


def test_replot_redraws_the_three_figures_of_a_recorded_folder(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(sweep()))
    paths = replot(tmp_path)
    assert [p.name for p in paths] == [FIG4A, FIG6, FIG4B]
    assert FIG6 == "fig6_accuracy_vs_critical_path_tokens.png"
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replot_of_a_folder_without_results_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"results\.json not found; pass the folder"):
        replot(tmp_path)


def test_bench_replot_command_redraws_without_running(tmp_path, capsys):
    from apr_env.cli import main as cli

    (tmp_path / "results.json").write_text(json.dumps(sweep()))
    assert cli(["bench", "--replot", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / name) for name in (FIG4A, FIG6, FIG4B)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([FIG4A, FIG4B, FIG6, "results.json"])
