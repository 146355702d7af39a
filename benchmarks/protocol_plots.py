"""Plots of the protocol benchmark, like the paper's Fig. 4a, 4b and 6, drawn from its results.

    python -m benchmarks.protocol_plots benchmarks/results/protocols   # re-plot a recorded results.json

`plot(results, out)` writes three PNGs (`protocol_bench.run_bench` calls it after a run):

- ``fig4a_accuracy_vs_total_tokens.png``: accuracy vs mean total tokens of all threads;
- ``fig6_accuracy_vs_critical_path_tokens.png``: accuracy vs mean critical-path tokens, the
  paper's latency axis; named for what it shows, since the benchmark measures no time;
- ``fig4b_cumulative_accuracy_vs_context.png``: accuracy of each protocol's best point when
  every thread's context must fit a window.

Every protocol stays visible. Each gets its own (marker, line style) pair and color; a curve
whose points equal an earlier protocol's (fork_full_context over apr: the same search
explores the same nodes, only prefill and context differ) is drawn over it with larger hollow
markers, its legend entry names the curve it covers, and a caption under the axes says so.
Numbers next to points are the protocol's budget knob, in its curve's color; each is put at the first of a few
offsets around its point where it overlaps no other number, marker or the legend (a
coinciding curve's numbers are left out: they would repeat the other's).

What this module leaves to others: running the sweep and the table (`protocol_bench`).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

FIG4A = "fig4a_accuracy_vs_total_tokens.png"
FIG6 = "fig6_accuracy_vs_critical_path_tokens.png"
FIG4B = "fig4b_cumulative_accuracy_vs_context.png"

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]
LINESTYLES = ["-", "--", "-.", ":"]
"""Protocol i gets ``MARKERS[i % 10]`` and ``LINESTYLES[i % 4]``: distinct pairs for up to 20 protocols."""

DPI = 120
MARKER_SIZE = 6.0  # points; a coinciding curve's hollow markers are 1.7x that, so the one below shows
LABEL_SIZE = 7.5  # points, the knob numbers next to markers
LABEL_PAD = 2.0  # points kept clear around each number, so neighbours do not read as one ("2" "2" as "22")
LABEL_OFFSETS = [
    # (dx, dy) in points from the marker, with the text alignment that keeps it off the marker
    (3, 3, "left", "bottom"),
    (3, -3, "left", "top"),
    (-3, 3, "right", "bottom"),
    (-3, -3, "right", "top"),
    (0, 6, "center", "bottom"),
    (0, -6, "center", "top"),
    (7, 0, "left", "center"),
    (-7, 0, "right", "center"),
    (10, 10, "left", "bottom"),
    (10, -10, "left", "top"),
    (-10, 10, "right", "bottom"),
    (-10, -10, "right", "top"),
]


def plot(results: dict, out: Path | str) -> list[Path]:
    """Write the three figures of `results` (a `run_bench` result) into folder `out`; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        FIG4A: accuracy_figure(results, "total_tokens", "mean total tokens per episode (all threads)"),
        FIG6: accuracy_figure(
            results,
            "critical_path_tokens",
            "mean critical-path tokens per episode (the paper's latency axis; no time measured)",
        ),
        FIG4B: context_figure(results),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=DPI)
    return [out / name for name in figures]


def replot(folder: Path | str) -> list[Path]:
    """Redraw the figures of a recorded run from ``folder/results.json``, without running anything."""
    folder = Path(folder)
    path = folder / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass the folder of a protocol benchmark run (its --out)")
    return plot(json.loads(path.read_text()), folder)


# ---- the figures ------------------------------------------------------------------------------------------


def accuracy_figure(results: dict, xkey: str, xlabel: str) -> Figure:
    """Accuracy (%) against the per-episode mean `xkey` of each sweep point, one curve per protocol."""
    by_protocol = _by_protocol(results)
    curves = {
        protocol: sorted((p[xkey], 100 * p["accuracy"], p["value"]) for p in pts)
        for protocol, pts in by_protocol.items()
    }
    fig, ax = _figure()
    covers = _coinciding({protocol: [c[:2] for c in curve] for protocol, curve in curves.items()})
    for protocol, curve in curves.items():
        _draw(ax, protocol, [c[0] for c in curve], [c[1] for c in curve], covers.get(protocol))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.margins(x=0.06, y=0.08)
    legend = ax.legend(fontsize=8)
    _finish(fig, _knob_note(by_protocol), covers, "same accuracy and tokens at every knob value")
    colors = {protocol: style(i)["color"] for i, protocol in enumerate(curves)}
    labels = [
        (x, y, str(value), colors[protocol])  # in the curve's color, so a number is read with its curve
        for protocol, curve in curves.items()
        if protocol not in covers
        for x, y, value in curve
    ]
    _place_labels(fig, ax, labels, legend)
    return fig


def context_figure(results: dict) -> Figure:
    """Cumulative accuracy (%) vs context window of each protocol's most accurate sweep point (Fig. 4b)."""
    fig, ax = _figure()
    curves: dict[str, list[tuple[float, float]]] = {}
    names: dict[str, str] = {}
    for protocol, pts in _by_protocol(results).items():
        best = max(pts, key=lambda p: p["accuracy"])  # the first of equals: the cheapest knob value
        windows = sorted(best["cumulative_accuracy"], key=int)
        curves[protocol] = [(int(w), 100 * best["cumulative_accuracy"][w]) for w in windows]
        names[protocol] = f"{protocol} ({best['knob']}={best['value']})"
    covers = _coinciding(curves)
    for protocol, curve in curves.items():
        covered = covers.get(protocol)
        _draw(
            ax, protocol, [c[0] for c in curve], [c[1] for c in curve], covered, names[protocol], hollow=True
        )
    ax.set_xlabel("context window per thread (tokens)")
    ax.set_ylabel("cumulative accuracy (%)")
    ax.margins(y=0.08)
    ax.legend(fontsize=8)
    note = "Each protocol at its most accurate knob value (in the legend); hollow markers show where curves meet."
    _finish(fig, note, covers, "same curve")
    return fig


# ---- drawing helpers --------------------------------------------------------------------------------------


def _by_protocol(results: dict) -> dict[str, list[dict]]:
    by_protocol: dict[str, list[dict]] = {}
    for p in results["points"]:
        by_protocol.setdefault(p["protocol"], []).append(p)
    return by_protocol


def _figure():
    fig = Figure(figsize=(6.8, 4.9), dpi=DPI)
    FigureCanvasAgg(fig)  # a canvas of its own: no pyplot state, no backend switch
    ax = fig.subplots()
    ax.grid(alpha=0.3)
    return fig, ax


def style(index: int) -> dict:
    """Color, marker and line style of the `index`-th protocol of a figure."""
    return {
        "color": f"C{index % 10}",
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINESTYLES[index % len(LINESTYLES)],
    }


def _draw(
    ax, protocol: str, xs: list, ys: list, covered: str | None, name: str | None = None, hollow: bool = False
) -> None:
    """One protocol's curve; drawn over the protocol `covered` (hollow, larger markers) when it coincides.

    `hollow` draws every marker as an outline, for figures whose curves meet at some points
    (Fig. 4b: they converge at the largest windows) so that no marker hides another."""
    kwargs = style(len(ax.get_lines()))
    label = name or protocol
    if covered is None:
        kwargs.update(markersize=MARKER_SIZE, zorder=2)
    else:
        kwargs.update(markersize=1.7 * MARKER_SIZE, zorder=3)
        label = f"{label}, over {covered}"
    if hollow or covered is not None:
        kwargs.update(markerfacecolor="none", markeredgewidth=1.5)
    ax.plot(xs, ys, label=label, linewidth=1.5, **kwargs)


def _coinciding(curves: dict[str, list[tuple]]) -> dict[str, str]:
    """Protocols whose points equal an earlier protocol's (to 1e-9), mapped to that protocol."""
    covers: dict[str, str] = {}
    seen: list[str] = []
    for protocol, points in curves.items():
        for other in seen:
            if len(points) == len(curves[other]) and all(
                abs(a - b) <= 1e-9 * max(1.0, abs(a))
                for p, q in zip(points, curves[other])
                for a, b in zip(p, q)
            ):
                covers[protocol] = covers.get(other, other)
                break
        seen.append(protocol)
    return covers


def _knob_note(by_protocol: dict[str, list[dict]]) -> str:
    """'Numbers at points: ...' naming each protocol's budget knob (the most common one first)."""
    knobs: dict[str, list[str]] = {}
    for protocol, pts in by_protocol.items():
        knobs.setdefault(pts[0]["knob"], []).append(protocol)
    ordered = sorted(knobs.items(), key=lambda kv: -len(kv[1]))
    parts = [ordered[0][0]] + [f"{knob} for {', '.join(protocols)}" for knob, protocols in ordered[1:]]
    return f"Numbers at points: the protocol's budget knob ({'; '.join(parts)})."


def _finish(fig: Figure, note: str, covers: dict[str, str], how: str) -> None:
    """Caption under the axes (the note, then each coincidence), tight layout, and a first draw."""
    lines = [note] + [
        f"{protocol} coincides with {other} ({how}; hollow markers)." for protocol, other in covers.items()
    ]
    caption = "\n".join(textwrap.fill(line, 110) for line in lines)
    fig.text(0.01, 0.01, caption, fontsize=7.5, ha="left", va="bottom")
    height = (
        (caption.count("\n") + 1) * 7.5 * 1.35 / 72 / fig.get_figheight()
    )  # caption lines, in figure units
    fig.tight_layout(rect=(0, height + 0.015, 1, 1))
    fig.canvas.draw()  # fixes the axis limits and the legend's place, which the labels must avoid


def _place_labels(fig: Figure, ax, labels: list[tuple[float, float, str, str]], legend) -> None:
    """Annotate each (x, y, text, color) at the first offset where it overlaps no label, marker or legend.

    Numbers keep `LABEL_PAD` clear of each other; markers are boxes of their drawn size. Falls
    back to the offset with the least overlap when every one collides, so a crowded plot
    still labels each point."""
    renderer = fig.canvas.get_renderer()
    pixels = fig.dpi / 72  # per point
    obstacles = [legend.get_window_extent(renderer)]
    for line in ax.get_lines():
        half = line.get_markersize() * pixels / 2
        obstacles += [
            Bbox.from_bounds(px - half, py - half, 2 * half, 2 * half)
            for px, py in ax.transData.transform(line.get_xydata())
        ]
    placed: list[Bbox] = []
    inside = ax.get_window_extent(renderer)
    for x, y, text, color in labels:
        best = None
        for dx, dy, ha, va in LABEL_OFFSETS:
            note = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=LABEL_SIZE,
                fontweight="bold",
                color=color,
                ha=ha,
                va=va,
            )
            box = note.get_window_extent(renderer)
            padded = box.padded(LABEL_PAD * pixels)
            cost = sum(_overlap(box, other) for other in obstacles) + sum(_overlap(padded, o) for o in placed)
            if box.x0 < inside.x0 or box.x1 > inside.x1 or box.y0 < inside.y0 or box.y1 > inside.y1:
                cost += box.width * box.height  # outside the axes counts as fully covered
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note, box)
            else:
                note.remove()
            if cost == 0:
                break
        placed.append(best[2])


def _overlap(a: Bbox, b: Bbox) -> float:
    """Area (pixels²) shared by two boxes."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def main(argv: list[str] | None = None) -> int:
    """Re-plot a recorded run: ``python -m benchmarks.protocol_plots FOLDER``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="folder holding results.json (a `apr-env bench --out` folder)")
    for path in replot(parser.parse_args(argv).folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
