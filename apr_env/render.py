"""Text pictures of an episode's thread tree (the Gymnasium ``render_mode="ansi"`` output).

One line per thread, indented by depth: id, protocol label, status and reason, generated
tokens, and whether its answer verified. The richer timeline picture is `apr-env show`'s job.
"""

from __future__ import annotations

from apr_env.tree import Status


def render_tree(episode) -> str:
    """The episode's tree as plain text (token counts are exact; counting happens here if needed)."""
    m = episode.metrics
    p = episode.problem
    head = (
        f"{episode.protocol.name} episode: target {p.target}, numbers {list(p.numbers)} | "
        f"outcome {episode.outcome or 'running'} | threads {m.num_threads}, total {m.total_tokens} tok, "
        f"critical path {m.critical_path_tokens} tok"
    )
    lines = [head]
    children: dict[int, list[int]] = {}
    for t in episode.threads:
        if t.parent is not None:
            children.setdefault(t.parent, []).append(t.id)

    def walk(tid: int, prefix: str, last: bool, root: bool) -> None:
        t = episode.threads[tid]
        generated = t.generated_tokens
        state = (
            t.status.value if t.status in (Status.RUNNING, Status.WAITING) else f"{t.status.value}:{t.reason}"
        )
        verified = (
            ""
            if t.result is None or not t.result.claimed
            else (" verified" if t.result.verified else " FALSE CLAIM")
        )
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{t.name} #{t.label} [{state}] {generated} tok{verified}")
        kids = children.get(tid, [])
        for i, c in enumerate(kids):
            walk(c, prefix + ("" if root else ("   " if last else "│  ")), i == len(kids) - 1, False)

    walk(0, "", True, True)
    return "\n".join(lines) + "\n"
