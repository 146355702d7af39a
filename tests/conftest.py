"""Shared fixtures of the environment tests: a per-character tokenizer and the reference worked example.

- `char_tok`: a tokenizer whose tokens are single characters (``encode(text) = [ord(c) ...]``),
  wrapped by `apr_env.tokenizer.load_tokenizer`, so token counts in the tests are character
  counts that can be computed by hand.
- `worked_example`: the hand-written APR example of reference/apr-reference.md section 2.9
  (T=10, inputs [1, 4, 6, 8]; a parent segment, two children, the resumed parent) as the
  actions a policy plays, plus the exact texts the environment must produce. The reference
  elides child 1's lines; they are written here following the grammar of section 2.7:
  node #0,0,1 holds [2, 6] and its three kept operations 2+6=8, 6-2=4, 6/2=3 all miss 10.
- `fuzz`: hypothesis strategies for the "never raises, always ends"
  tests of both environments: random text, random mixtures of grammar fragments (calling
  blocks, spawn lines, node and state lines, goal lines, possibly cut anywhere), junk values
  and structured actions; small limits so that episodes stay short.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from trace_text import calling_block
from worked_example import ANSWER_PATH

from apr_env import Limits, Problem
from apr_env.actions import Answer, Join, Spawn, Text
from apr_env.tokenizer import load_tokenizer

# `make mutation` runs the suite once per mutant with ``--hypothesis-profile=mutation``: the same examples
# every run (a reproducible score) and no shrinking (a failing example already kills the mutant).
settings.register_profile(
    "mutation", derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)


class CharTokenizer:
    """One token per character: token counts equal ``len(text)``."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(i) for i in ids)


@pytest.fixture
def char_tok():
    """The per-character tokenizer as the environments use it (`load_tokenizer` of an encode/decode object)."""
    return load_tokenizer(CharTokenizer())


# --------------------------------------------------------------------------------------
# Reference section 2.9, line by line. Line lengths (characters) are noted for the
# hand-computed token counts of the tests (per-character tokenizer: 1 char = 1 token).
# --------------------------------------------------------------------------------------

ROOT_PROMPT = (
    "Moving to Node #0\n"  # 17 + 1
    "Current State: 10:[1, 4, 6, 8], Operations: []"  # 46, no trailing newline -> 64
)

# The parent's first action: segment 0 minus its two prompt lines. 14 lines of
# 56+50+56+50+19+50+53+49+53+49 (= 485, the 10 search lines) + 22+53+53+26 (= 154, the calling block)
# = 639 characters + 13 newlines = 652.
ROOT_SEGMENT_0 = """Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]
Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2
Exploring Operation: 8-6=2, Resulting Numbers: [1, 4, 2]
Generated Node #0,1: 10:[1, 4, 2] Operation: 8-6=2
Moving to Node #0,0
Current State: 10:[1, 6, 2], Operations: ['8/4=2']
Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]
Generated Node #0,0,0: 10:[2, 5] Operation: 6-1=5
Exploring Operation: 1*6=6, Resulting Numbers: [2, 6]
Generated Node #0,0,1: 10:[2, 6] Operation: 1*6=6
<Calling Sub Searches>
<Start Sub Search 0 at level 1> Moving to Node #0,0,0
<Start Sub Search 1 at level 1> Moving to Node #0,0,1
<End Calling Sub Searches>"""

CHILD_0_PROMPT = (
    "Moving to Node #0,0,0\nCurrent State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']"  # 21+1+56 = 78
)
# 8 lines: 50+25+52+25+21+56+52+25 = 306 characters + 7 newlines = 313.
CHILD_0_ACTION = """Exploring Operation: 5-2=3, Resulting Numbers: [3]
3,10 unequal: No Solution
Exploring Operation: 2*5=10, Resulting Numbers: [10]
10,10 equal: Goal Reached
Moving to Node #0,0,0
Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']
Exploring Operation: 2*5=10, Resulting Numbers: [10]
10,10 equal: Goal Reached"""

CHILD_1_PROMPT = (
    "Moving to Node #0,0,1\nCurrent State: 10:[2, 6], Operations: ['8/4=2', '1*6=6']"  # 21+1+56 = 78
)
# 7 lines: 50+25+50+25+50+25+18 = 243 characters + 6 newlines = 249.
CHILD_1_ACTION = """Exploring Operation: 2+6=8, Resulting Numbers: [8]
8,10 unequal: No Solution
Exploring Operation: 6-2=4, Resulting Numbers: [4]
4,10 unequal: No Solution
Exploring Operation: 6/2=3, Resulting Numbers: [3]
3,10 unequal: No Solution
No solution found."""

# The join block inserted into the resumed parent (with its trailing newline): 8 lines of
# 14+56+21+56+52+25+55+18 = 297 characters + 8 newlines = 305.
JOIN_BLOCK = """<Sub Searches>
<Goal Reached in Sub Search 0 at level 1 at Node #0,0,0>
Moving to Node #0,0,0
Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']
Exploring Operation: 2*5=10, Resulting Numbers: [10]
10,10 equal: Goal Reached
<No Solution in Sub Search 1 at level 1 at Node #0,0,1>
<End Sub Searches>
"""

# The resumed parent's action: the goal line + the answer path. 13 lines: 25 + (the path's 12 lines:
# 17+46+56+50+19+50+53+49+21+56+52+25 = 494) = 519 characters + 12 newlines = 531.
ROOT_CONTINUATION = "10,10 equal: Goal Reached\n" + ANSWER_PATH


@dataclass(frozen=True)
class WorkedExample:
    """Reference section 2.9 as actions and expected texts (see the module docstring)."""

    problem: Problem
    root_prompt: str
    root_segment_0: str
    child_prompts: tuple[str, str]
    child_actions: tuple[str, str]
    join_block: str
    root_continuation: str
    answer_path: str

    @property
    def kept_prefix(self) -> str:
        """The parent's text before its calling block: the 12 lines of segment 0 that the resumed parent keeps."""
        return self.root_prompt + "\n" + self.root_segment_0.split("<Calling Sub Searches>")[0]


@pytest.fixture
def worked_example() -> WorkedExample:
    return WorkedExample(
        problem=Problem(10, (1, 4, 6, 8)),
        root_prompt=ROOT_PROMPT,
        root_segment_0=ROOT_SEGMENT_0,
        child_prompts=(CHILD_0_PROMPT, CHILD_1_PROMPT),
        child_actions=(CHILD_0_ACTION, CHILD_1_ACTION),
        join_block=JOIN_BLOCK,
        root_continuation=ROOT_CONTINUATION,
        answer_path=ANSWER_PATH,
    )


# --------------------------------------------------------------------------------------
# Hypothesis strategies for fuzzing both environments
# --------------------------------------------------------------------------------------


def _nums(values) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


NODE = st.lists(st.integers(0, 3), max_size=3).map(lambda ks: ",".join(["0", *map(str, ks)]))
NUMBER = st.integers(0, 120)
NUMS = st.lists(NUMBER, max_size=5)
OP = st.builds(lambda a, o, b, r: f"{a}{o}{b}={r}", NUMBER, st.sampled_from("+-*/"), NUMBER, NUMBER)
STATE = st.builds(
    lambda t, v, ops: f"Current State: {t}:{_nums(v)}, Operations: [{', '.join(map(repr, ops))}]",
    NUMBER,
    NUMS,
    st.lists(OP, max_size=3),
)


def _fragment_strategy():
    fixed = st.sampled_from(
        [
            "<Calling Sub Searches>",
            "<End Calling Sub Searches>",
            "<Sub Searches>",
            "<End Sub Searches>",
            "No solution found.",
            "10,10 equal: Goal Reached",
            "",
        ]
    )
    return st.one_of(
        fixed,
        fixed,
        st.builds(
            lambda i, level, n: f"<Start Sub Search {i} at level {level}> Moving to Node #{n}",
            st.integers(0, 20),
            st.integers(0, 4),
            NODE,
        ),
        st.builds(lambda n: f"Moving to Node #{n}", NODE),
        STATE,
        st.builds(lambda n, s: f"Moving to Node #{n}\n{s}", NODE, STATE),  # defines node n for a spawn
        st.builds(
            lambda n, t, v, o: f"Generated Node #{n}: {t}:{_nums(v)} Operation: {o}", NODE, NUMBER, NUMS, OP
        ),
        st.builds(lambda o, v: f"Exploring Operation: {o}, Resulting Numbers: {_nums(v)}", OP, NUMS),
        st.builds(lambda x, t: f"{x},{t} equal: Goal Reached", NUMBER, NUMBER),
        st.builds(lambda x, t: f"{x},{t} unequal: No Solution", NUMBER, NUMBER),
        st.text(max_size=20),
    )


def _grammar_text():
    """Lines of grammar fragments joined by newlines, sometimes cut at a random point."""
    joined = st.lists(_fragment_strategy(), max_size=8).map("\n".join)
    return st.one_of(joined, st.tuples(joined, st.integers(0, 300)).map(lambda p: p[0][: p[1]]))


def _spawn_text():
    """Fragments, then a well-formed calling block (node #0 always exists; others may not)."""
    nodes = st.lists(st.sampled_from(["0", "0", "0,0", "0,1", "0,0,0"]) | NODE, min_size=1, max_size=6)
    pre = st.lists(_fragment_strategy(), max_size=3).map("\n".join)
    return st.builds(
        lambda pre, ns, level: pre + "\n" + calling_block(*ns, level=level),
        pre,
        nodes,
        st.integers(1, 3),
    )


def _action_strategy():
    text = _grammar_text()
    spawn = _spawn_text()
    printable = st.text(st.characters(min_codepoint=9, max_codepoint=126), max_size=30)
    junk = st.one_of(
        st.none(),
        st.integers(),
        st.floats(allow_nan=True),
        st.binary(max_size=10),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(
            st.sampled_from(["text", "spawn", "answer", "join", "token_ids", "partial", "junk"]),
            st.one_of(
                st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.lists(st.text(max_size=4))
            ),
            max_size=3,
        ),
    )
    labels = st.lists(st.sampled_from(["0", "0,0", "0,1", "0,0,0", "9,9"]), max_size=20).map(tuple)
    structured = st.one_of(
        st.builds(
            Text,
            st.one_of(text, spawn, printable),
            token_ids=st.none() | st.lists(st.integers(0, 150), max_size=30).map(tuple),
            partial=st.booleans(),
        ),
        st.builds(Spawn, labels, text=text),
        st.builds(Answer, st.none() | text, text=text),
        st.builds(Join, text=text),
    )
    return st.one_of(spawn, spawn, spawn, text, text, st.text(max_size=200), junk, structured)


class FuzzKit:
    """The fuzzing strategies and the step bound, with a short repr for hypothesis failure reports."""

    actions = _action_strategy()
    """Strategy: one action value of any kind (see the module docstring)."""
    spawns = _spawn_text()
    """Strategy: grammar fragments ending in a well-formed calling block (to start episodes with a tree)."""
    limits = st.builds(
        Limits,
        context_window=st.sampled_from([40, 300, 300, 1000]),
        max_threads=st.integers(1, 8),
        max_children_per_spawn=st.integers(1, 4),
        max_depth=st.integers(0, 3),
        max_total_tokens=st.integers(1, 2000),
    )
    """Strategy: small `Limits`, so that a fuzzed episode ends in a few hundred steps at most."""

    @staticmethod
    def step_bound(limits: Limits) -> int:
        """Most steps an episode can take under `limits` (Gymnasium: one thread per step; PettingZoo:
        every running thread acts in each step, so at least one does): each thread ends once
        (max_threads steps); every other action (spawn or partial) adds at least one generated token,
        and the episode ends as soon as generated tokens exceed `limits.total_token_budget`."""
        return limits.max_threads + limits.total_token_budget + 1

    def __repr__(self) -> str:
        return "FuzzKit()"


@pytest.fixture(scope="session")
def fuzz() -> FuzzKit:
    return FuzzKit()
