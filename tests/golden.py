"""The official solver's traces (tests/data/official-traces.json, see its README), loaded once.

The file ships with the repository, so golden tests never skip: a missing file is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from apr_env import Problem

PATH = Path(__file__).resolve().parent / "data" / "official-traces.json"
GOLDEN = json.loads(PATH.read_text())
APR: list[dict] = GOLDEN["apr"]
"""40 APR problems with the solver's trace_dict, official answer and verdict."""
SOSP: list[dict] = GOLDEN["sosp"]
"""40 SoS+ problems with the solver's search_path and solved flag."""

END_SUB = "<End Sub Searches>\n"


@dataclass(frozen=True)
class AprReplay:
    """The actions and expected texts of one official APR tree."""

    problem: Problem
    segments: list[str]
    """Official parent segments (main_calls)."""
    root_actions: list[str]
    children: list[list[tuple[str, str, str]]]
    """Per spawn, per child in spawn order: (prompt, action, official full text)."""


def apr_replay(entry: dict) -> AprReplay:
    td = entry["trace_dict"]
    segments = td["main_calls"]
    root_actions = [segments[0].split("\n", 2)[2]]
    root_actions += [seg[seg.rindex(END_SUB) + len(END_SUB) :] for seg in segments[1:]]
    children = []
    for group in td["sub_calls"]:
        specs = []
        for child in group:
            text = child["main_calls"][0]
            first, second, rest = text.split("\n", 2)
            specs.append((f"{first}\n{second}", rest, text))
        children.append(specs)
    return AprReplay(Problem(entry["target"], tuple(entry["nums"])), segments, root_actions, children)
