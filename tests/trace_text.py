"""Trace text the tests write by hand, spelled out literally (not built with `apr_env.grammar`,
so the tests pin the official bytes instead of repeating the code under test)."""


def calling_block(*nodes: str, level: int = 1) -> str:
    """An APR spawn request for children at `nodes` (no trailing newline)."""
    lines = [f"<Start Sub Search {i} at level {level}> Moving to Node #{n}" for i, n in enumerate(nodes)]
    return "\n".join(["<Calling Sub Searches>", *lines, "<End Calling Sub Searches>"])
