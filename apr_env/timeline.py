"""Where each thread of an episode spends its tokens in time: the fork-join schedule and its picture.

`schedule(episode)` lays the tree out on a machine with unbounded parallelism and one token
per time step (the model behind `critical_path_tokens`): the root starts at 0; a spawn's
children start when the spawning call ends; the parent's next call starts when its last
child ends. The root's end time equals `Metrics.critical_path_tokens`.

`plot_timeline(episode, path)` draws it (one row per thread, spawn and join edges, the
critical path in red); matplotlib is imported only there.
"""

from __future__ import annotations

from dataclasses import dataclass

from apr_env.metrics import count_tokens


@dataclass(frozen=True)
class Bar:
    thread: int
    call: int
    start: int
    end: int
    critical: bool = False


def schedule(episode) -> tuple[list[Bar], list[tuple[int, int, int, int]]]:
    """(bars, edges): one bar per call; edges (from thread, to thread, time, kind 0=spawn 1=join)."""
    threads, groups = episode.threads, episode.groups
    count_tokens(threads, episode.tokenizer)
    bars: list[Bar] = []
    edges: list[tuple[int, int, int, int]] = []
    ends: dict[int, int] = {}

    def run(tid: int, start: int) -> int:
        t = threads[tid]
        clock = start
        for ci, call in enumerate(t.calls):
            bars.append(Bar(tid, ci, clock, clock + call.generated_tokens))
            clock += call.generated_tokens
            spawned = [gi for gi in t.groups if groups[gi].call_index == ci]
            for gi in spawned:
                finish = clock
                for child in groups[gi].children:
                    edges.append((tid, child, clock, 0))
                    end = run(child, clock)
                    edges.append((child, tid, end, 1))
                    finish = max(finish, end)
                clock = finish
        ends[tid] = clock
        return clock

    run(0, 0)
    critical = _critical_threads(episode, ends)
    bars = [Bar(b.thread, b.call, b.start, b.end, b.thread in critical) for b in bars]
    return bars, edges


def _critical_threads(episode, ends: dict[int, int]) -> set[int]:
    """Threads on the critical path: the root, then at each join the child that ended last, recursively."""
    out, stack = set(), [0]
    while stack:
        tid = stack.pop()
        out.add(tid)
        for gi in episode.threads[tid].groups:
            children = episode.groups[gi].children
            if children:
                stack.append(max(children, key=lambda c: (ends[c], -c)))
    return out


def plot_timeline(episode, path) -> None:
    """Write the schedule as a PNG (rows = threads, x = token time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars, edges = schedule(episode)
    n = len(episode.threads)
    fig, ax = plt.subplots(figsize=(9, 0.35 * n + 1.6))
    for b in bars:
        ax.barh(
            b.thread,
            max(b.end - b.start, 0.5),
            left=b.start,
            height=0.6,
            color="#d62728" if b.critical else "#1f77b4",
            alpha=0.85,
        )
    for src, dst, time, kind in edges:
        ax.annotate(
            "",
            xy=(time, dst),
            xytext=(time, src),
            arrowprops={"arrowstyle": "->", "color": "#2ca02c" if kind == 0 else "#9467bd", "lw": 0.8},
        )
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{t.name} #{t.label}" for t in episode.threads], fontsize=7)
    ax.invert_yaxis()
    m = episode.metrics
    ax.set_xlabel("token time (one token per step, unbounded parallelism)")
    ax.set_title(
        f"{episode.protocol.name}: {episode.outcome} | total {m.total_tokens} tok, critical path "
        f"{m.critical_path_tokens} tok (red), spawn (green) / join (purple)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
