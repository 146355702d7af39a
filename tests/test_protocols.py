"""Specification of `apr_env.protocols`: the registry, the APR fork-join grammar and the serial SoS+ one.

Covers: lookup by name, "did you mean" for unknown names, registering a new protocol;
APR root prompts with and without the ``Sub Call Budget: n `` prefix (children get none);
child prompts built from the parent's own text (the Generated Node lines that created the node,
nested lookups, the prompt's Moving/Current State pair for the start node; never eval; equal
to the official solver's child prompts even after its flaw-4 ``Moving to Node`` lines); the byte-exact join block of reference section 2.9;
unknown node ids failing only that child; real nesting levels (``at level 2``); false
claims verified before joining; malformed spawn blocks; the serial protocol's prompt with
``Token Budget: b `` and that it never spawns. Episodes use the per-character tokenizer.
"""

from __future__ import annotations

import random
import re

import gymnasium as gym
import pytest
from trace_text import calling_block

import apr_env  # noqa: F401  (registers APRCountdown-v0)
from apr_env import Episode, Limits, Problem, generate_problems
from apr_env.actions import Answer, Spawn
from apr_env.errors import UnknownNameError
from apr_env.protocols import PROTOCOLS, AprProtocol, Protocol, SerialProtocol, get_protocol, register
from benchmarks.baselines import official_solvers

P = Problem(10, (1, 4, 6, 8))
ROOT_STATE = "Current State: 10:[1, 4, 6, 8], Operations: []"


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,cls", [("apr", AprProtocol), ("serial", SerialProtocol)], ids=["apr", "serial"]
)
def test_get_protocol_by_name_returns_an_instance_of_the_registered_class(name, cls):
    proto = get_protocol(name)
    assert type(proto) is cls and proto.name == name


def test_get_protocol_passes_kwargs_to_the_named_class():
    assert get_protocol("apr", sub_call_budget=7).sub_call_budget == 7
    assert get_protocol("serial", token_budget=512).token_budget == 512


def test_get_protocol_returns_an_instance_as_is_and_rejects_kwargs_with_it():
    proto = AprProtocol()
    assert get_protocol(proto) is proto
    with pytest.raises(TypeError, match="only accepted with a protocol name"):
        get_protocol(proto, sub_call_budget=3)


@pytest.mark.parametrize("bad,hint", [("aprr", "apr"), ("seria", "serial")], ids=["aprr", "seria"])
def test_unknown_protocol_name_raises_with_did_you_mean_and_known_names(bad, hint):
    with pytest.raises(UnknownNameError, match=f"Did you mean '{hint}'\\?") as err:
        get_protocol(bad)
    assert isinstance(err.value, KeyError)  # callers catching the built-in keep working
    known = str(err.value).split("Known:")[1]
    assert "apr" in known and "serial" in known


def test_unknown_protocol_name_in_gym_make_raises_with_hint():
    with pytest.raises(UnknownNameError, match="Did you mean 'serial'"):
        gym.make("APRCountdown-v0", protocol="serail")


def test_registered_protocol_is_usable_by_name_in_an_episode(char_tok):
    class ShoutingSerial(SerialProtocol):
        name = "test_shouting_serial"

        def root_prompt(self, problem):
            return "SHOUT " + super().root_prompt(problem)

    try:
        assert register(ShoutingSerial) is ShoutingSerial
        ep = Episode(P, "test_shouting_serial", tokenizer=char_tok)
        assert ep.observation(0) == "SHOUT " + ROOT_STATE
    finally:
        PROTOCOLS.pop("test_shouting_serial", None)


def test_register_rejects_a_class_without_a_name():
    class Nameless(SerialProtocol):
        name = ""

    with pytest.raises(ValueError, match="Nameless must set a non-empty `name`"):
        register(Nameless)


# --------------------------------------------------------------------------------------
# APR prompts
# --------------------------------------------------------------------------------------


def test_apr_root_prompt_is_byte_exact():
    assert AprProtocol().root_prompt(P) == "Moving to Node #0\n" + ROOT_STATE


@pytest.mark.parametrize("n", [0, 3, 10])
def test_apr_root_prompt_with_sub_call_budget_prefix(n):
    # reference 4.1: one space after n, no newline before "Moving to Node"
    assert (
        AprProtocol(sub_call_budget=n).root_prompt(P)
        == f"Sub Call Budget: {n} Moving to Node #0\n" + ROOT_STATE
    )


@pytest.mark.parametrize("bad", [-1, "10", 2.5], ids=["negative", "str", "float"])
def test_apr_rejects_bad_sub_call_budget(bad):
    with pytest.raises(ValueError, match="sub_call_budget must be None or an int >= 0"):
        AprProtocol(sub_call_budget=bad)


def test_children_get_no_sub_call_budget_prefix(char_tok):
    ep = Episode(P, get_protocol("apr", sub_call_budget=4), tokenizer=char_tok)
    assert ep.act(0, calling_block("0")) == "spawn"
    assert ep.observation(1) == "Moving to Node #0\n" + ROOT_STATE


def test_child_prompts_of_worked_example_come_from_generated_node_lines(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    assert ep.observation(0) == ex.root_prompt
    assert ep.act(0, ex.root_segment_0) == "spawn"
    # #0,0,0's ops = ops of #0,0 (its Generated Node line: ['8/4=2']) + its own '6-1=5'
    assert (ep.observation(1), ep.observation(2)) == ex.child_prompts
    assert [t.start for t in ep.threads[1:]] == [Problem(10, (2, 5)), Problem(10, (2, 6))]


def test_child_prompt_from_nested_generated_lines_only(char_tok):
    # #0,1,0 and its parent #0,1 exist only as Generated Node lines: ops chain back to #0's state.
    text = (
        "Exploring Operation: 8-6=2, Resulting Numbers: [1, 4, 2]\n"
        "Generated Node #0,1: 10:[1, 4, 2] Operation: 8-6=2\n"
        "Exploring Operation: 4*2=8, Resulting Numbers: [1, 8]\n"
        "Generated Node #0,1,0: 10:[1, 8] Operation: 4*2=8\n" + calling_block("0,1,0")
    )
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert (
        ep.observation(1) == "Moving to Node #0,1,0\nCurrent State: 10:[1, 8], Operations: ['8-6=2', '4*2=8']"
    )


def test_generated_line_wins_over_a_moving_line_followed_by_another_nodes_state(char_tok):
    # official flaw 4 (reference section 8 item 4): "Moving to Node #0,0" followed by #0,1's state
    text = (
        "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n"
        "Generated Node #0,1: 10:[1, 4, 2] Operation: 8-6=2\n"
        "Moving to Node #0,0\n"
        "Current State: 10:[1, 4, 2], Operations: ['8-6=2']\n"
        "Generated Node #0,0,0: 10:[1, 8] Operation: 6+2=8\n" + calling_block("0,0,0", "0,0")
    )
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert (
        ep.observation(1) == "Moving to Node #0,0,0\nCurrent State: 10:[1, 8], Operations: ['8/4=2', '6+2=8']"
    )
    assert ep.observation(2) == "Moving to Node #0,0\nCurrent State: 10:[1, 6, 2], Operations: ['8/4=2']"


def test_first_generated_line_of_a_node_wins(char_tok):
    text = (
        "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n"
        "Generated Node #0,0: 10:[1, 4, 2] Operation: 8-6=2\n" + calling_block("0,0")
    )
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert ep.observation(1) == "Moving to Node #0,0\nCurrent State: 10:[1, 6, 2], Operations: ['8/4=2']"


def test_a_later_moving_line_cannot_change_the_start_nodes_state(char_tok):
    # the root's state is its prompt's; a model's later "Moving to Node #0" pair does not override it
    text = "Moving to Node #0\nCurrent State: 10:[2, 2], Operations: []\n" + calling_block("0")
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert ep.observation(1) == "Moving to Node #0\n" + ROOT_STATE


def official_apr_record(target: int, numbers: list[int], seed: int) -> dict:
    """The official solver's tree (the plain re-implementation, flaw 4 included) under `random.seed(seed)`."""
    state = random.getstate()
    random.seed(seed)
    try:
        return official_solvers.official_apr(target, numbers)
    finally:
        random.setstate(state)


def child_prompts_per_spawn(record: dict) -> list[tuple[list[str], list[str]]]:
    """Per spawning parent segment: (the environment's child prompts, the official child prompts).

    Each official parent segment (text up to its calling block) is played as the root's action
    of a fresh episode; the official prompts are each child trace's first two lines.
    """
    problem = Problem(record["target"], tuple(record["nums"]))
    limits = Limits(context_window=16384, max_children_per_spawn=32)
    out = []
    for segment, children in zip(record["trace_dict"]["main_calls"], record["trace_dict"]["sub_calls"]):
        ep = Episode(problem, "apr", limits=limits)
        assert ep.act(0, segment.split("\n", 2)[2]) == "spawn" and not ep.groups[0].rejected
        ours = [ep.observation(tid) for tid in ep.groups[0].children]
        official = ["\n".join(c["main_calls"][0].split("\n", 2)[:2]) for c in children]
        out.append((ours, official))
    return out


def test_child_prompts_after_official_flaw4_lines_equal_the_training_data():
    # target 79, [22, 29, 62, 60], random.seed(1492): beam 10, 10 spawns; before the 10th spawn the
    # text has "Moving to Node #0,8" lines followed by other nodes' states ('22+60=82', '60-29=31')
    record = official_apr_record(79, [22, 29, 62, 60], 1492)
    record.update(target=79, nums=[22, 29, 62, 60])
    parent = record["trace_dict"]["main_calls"][9]
    assert "Moving to Node #0,8\nCurrent State: 79:[29, 62, 82], Operations: ['22+60=82']" in parent
    assert "Generated Node #0,8: 79:[22, 60, 33] Operation: 62-29=33\n" in parent
    ours, official = child_prompts_per_spawn(record)[9]
    trained = "Moving to Node #0,8,5\nCurrent State: 79:[60, 55], Operations: ['62-29=33', '22+33=55']"
    assert ours[0] == official[0] == trained
    assert ours == official


def misnamed_nodes(text: str) -> set[str]:
    """Ids X whose ``Moving to Node #X`` line is followed by a state other than X's Generated line's."""
    generated = dict(re.findall(r"^Generated Node #([\d,]+): \d+:(\[[\d, ]*\])", text, re.M))
    moved = re.findall(r"^Moving to Node #([\d,]+)\nCurrent State: \d+:(\[[\d, ]*\])", text, re.M)
    return {node for node, nums in moved if node in generated and generated[node] != nums}


@pytest.mark.parametrize(
    "problems,seeds,hits_flaw4",
    [
        # random problems: almost always solved at the first spawn, flaw-4 lines are rare
        (list(generate_problems(100, seed=32)), range(4321, 4421), False),
        # the problem is unsolvable, so every tree spawns again and again after failed spawns
        ([Problem(79, (22, 29, 62, 60))] * 60, range(60), True),
    ],
    ids=["random_problems", "unsolvable_79"],
)
def test_child_prompts_equal_the_official_solvers(problems, seeds, hits_flaw4):
    """Differential: every child prompt of the official solver's trees (flaw-4 lines included)."""
    affected = 0  # spawns of a child below a node that a flaw-4 line misnamed
    for p, seed in zip(problems, seeds):
        record = official_apr_record(p.target, list(p.numbers), seed)
        record.update(target=p.target, nums=list(p.numbers))
        for k, (ours, official) in enumerate(child_prompts_per_spawn(record)):
            assert ours == official
            misnamed = misnamed_nodes(record["trace_dict"]["main_calls"][k])
            affected += any(prompt.split("\n")[0][16:].rpartition(",")[0] in misnamed for prompt in official)
    print(f"spawns below a misnamed node: {affected}")
    assert bool(affected) == hits_flaw4  # the second sample holds the case it guards, so it can fail


def test_node_state_is_never_evaluated(char_tok, tmp_path):
    marker = tmp_path / "evaluated"
    text = (
        "Moving to Node #0,7\n"
        f"Current State: 10:[1, 2], Operations: [__import__('pathlib').Path('{marker}').touch()]\n"
        + calling_block("0,7")
    )
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert not marker.exists()
    assert ep.groups[0].rejected == {0: "unknown_node"}


# --------------------------------------------------------------------------------------
# Join
# --------------------------------------------------------------------------------------


def test_join_block_of_worked_example_is_byte_exact(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(1, ex.child_actions[0])
    ep.act(2, ex.child_actions[1])
    # the calling block is dropped; the join block follows the 12 kept lines (reference 2.9, 3.6)
    assert ep.threads[0].calls[1].inserted == ex.join_block
    assert ep.observation(0) == ex.kept_prefix + ex.join_block
    assert ep.act(0, ex.root_continuation) == "finish"
    assert ep.outcome == "correct" and ep.answer == ex.answer_path


def test_unknown_node_id_fails_only_that_child_and_joins_as_no_solution(worked_example, char_tok):
    ex = worked_example
    text = ex.root_segment_0.split("<Calling Sub Searches>")[0] + calling_block("0,9", "0,0,0")
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    assert ep.act(0, text) == "spawn"
    assert len(ep.threads) == 2 and ep.threads[1].label == "0,0,0" and ep.threads[1].position == 1
    assert ep.groups[0].rejected == {0: "unknown_node"}
    assert (0, "unknown_node") in ep.format_errors and ep.metrics.rejected_children == 1
    ep.act(1, ex.child_actions[0])
    assert not ep.done and ep.runnable == [0]
    assert (
        ep.threads[0]
        .calls[1]
        .inserted.startswith(
            "<Sub Searches>\n<No Solution in Sub Search 0 at level 1 at Node #0,9>\n"
            "<Goal Reached in Sub Search 1 at level 1 at Node #0,0,0>\n"
        )
    )


def test_grandchildren_use_real_nesting_level_two(worked_example, char_tok):
    ex = worked_example
    path = ex.answer_path.split("\n")
    ep = Episode(ex.problem, "apr", limits=Limits(max_depth=2), tokenizer=char_tok)
    ep.act(0, "\n".join(path[2:4]) + "\n" + calling_block("0,0"))  # explore 8/4=2 -> #0,0, spawn it
    assert ep.observation(1) == "Moving to Node #0,0\nCurrent State: 10:[1, 6, 2], Operations: ['8/4=2']"
    ep.act(1, "\n".join(path[6:8]) + "\n" + calling_block("0,0,0", level=2))  # the child spawns #0,0,0
    assert ep.threads[2].depth == 2 and ep.observation(2) == ex.child_prompts[0]
    assert not ep.format_errors
    ep.act(2, ex.child_actions[0])
    assert ep.threads[1].calls[1].inserted == (
        "<Sub Searches>\n<Goal Reached in Sub Search 0 at level 2 at Node #0,0,0>\n"
        + "\n".join(path[8:])
        + "\n<End Sub Searches>\n"
    )
    ep.act(1, "10,10 equal: Goal Reached\n" + "\n".join(path[4:]))  # the child's own path from #0,0
    assert (
        ep.threads[0]
        .calls[1]
        .inserted.startswith(
            "<Sub Searches>\n<Goal Reached in Sub Search 0 at level 1 at Node #0,0>\nMoving to Node #0,0\n"
        )
    )
    ep.act(0, ex.root_continuation)
    assert ep.outcome == "correct" and ep.metrics.depth == 2


def test_structured_spawn_renders_the_real_level(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_depth=2), tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    ep.act(1, Spawn(("0",)))
    assert "<Start Sub Search 0 at level 2> Moving to Node #0\n" in ep.threads[1].calls[0].completion
    assert not ep.format_errors and ep.threads[2].depth == 2


@pytest.mark.parametrize(
    "block",
    [calling_block("0", level=2), calling_block("0").replace("Sub Search 0", "Sub Search 3")],
    ids=["wrong_level", "wrong_index"],
)
def test_spawn_line_with_wrong_index_or_level_is_recorded_but_spawns(char_tok, block):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, block) == "spawn"
    assert len(ep.threads) == 2 and (0, "spawn_index_or_level_mismatch") in ep.format_errors


def test_false_claim_is_verified_before_join_and_joins_as_no_solution(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(1, ex.child_actions[0])
    # child 1 (#0,0,1 holds [2, 6]) claims child 0's path: valid arithmetic from the wrong numbers
    claim = (
        "10,10 equal: Goal Reached\n"
        + ex.child_prompts[0]
        + "\n"
        + "\n".join(ex.child_actions[0].split("\n")[-2:])
    )
    ep.act(2, claim)
    child = ep.threads[2]
    assert child.result.claimed and not child.result.verified
    assert (2, "false_claim") in ep.format_errors
    assert ep.metrics.false_claims == 1
    assert "<No Solution in Sub Search 1 at level 1 at Node #0,0,1>" in ep.threads[0].calls[1].inserted
    assert "Goal Reached in Sub Search 1" not in ep.threads[0].calls[1].inserted


def test_made_up_arithmetic_claim_is_a_false_claim(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(1, "No solution found.")
    made_up = (
        "10,10 equal: Goal Reached\n" + ex.child_prompts[1] + "\n"
        "Exploring Operation: 2+6=10, Resulting Numbers: [10]\n10,10 equal: Goal Reached"
    )
    ep.act(2, made_up)
    assert ep.threads[2].result.reason != "ok" and not ep.threads[2].result.verified
    assert ep.metrics.false_claims == 1
    assert ep.threads[0].calls[1].inserted == (
        "<Sub Searches>\n<No Solution in Sub Search 0 at level 1 at Node #0,0,0>\n"
        "<No Solution in Sub Search 1 at level 1 at Node #0,0,1>\n<End Sub Searches>\n"
    )


# --------------------------------------------------------------------------------------
# Malformed spawn blocks
# --------------------------------------------------------------------------------------


def test_truncated_calling_block_is_not_a_spawn(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0") == "finish"
    assert ep.done and len(ep.threads) == 1 and ep.outcome == "no_answer"


def test_garbage_line_in_block_is_recorded_and_valid_lines_still_spawn(char_tok):
    block = calling_block("0", "0").replace("<Start Sub Search 1", "<Start Sub Serch 1")
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, block) == "spawn"
    assert len(ep.threads) == 2 and (0, "malformed_spawn_line") in ep.format_errors


def test_empty_calling_block_joins_at_once_and_the_parent_continues(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, "<Calling Sub Searches>\n<End Calling Sub Searches>") == "spawn"
    assert (0, "empty_spawn") in ep.format_errors and ep.runnable == [0]
    assert ep.observation(0) == "Moving to Node #0\n" + ROOT_STATE + "\n<Sub Searches>\n<End Sub Searches>\n"


@pytest.mark.parametrize(
    "text",
    [
        "Exploring\n<End Calling Sub Searches>",
        "Exploring<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0\n<End Calling Sub Searches>",
    ],
    ids=["end_without_start", "start_not_at_line_start"],
)
def test_malformed_calling_block_loses_none_of_the_parents_text(char_tok, text):
    # BUG (protocols/apr.py parse_spawn returns request_start=-1 for these; join then keeps
    # context[:-1], dropping the parent's last character): whatever the episode does with such a
    # block, the text the parent wrote must stay in its context.
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, text)
    assert ep.observation(0).startswith("Moving to Node #0\n" + ROOT_STATE + "\n" + text)


# --------------------------------------------------------------------------------------
# Serial (SoS+)
# --------------------------------------------------------------------------------------


def test_serial_root_prompt_is_byte_exact():
    assert SerialProtocol().root_prompt(P) == ROOT_STATE


@pytest.mark.parametrize("b", [512, 4096])
def test_serial_root_prompt_with_token_budget_prefix(b):
    assert SerialProtocol(token_budget=b).root_prompt(P) == f"Token Budget: {b} " + ROOT_STATE


def test_serial_rejects_bad_token_budget():
    with pytest.raises(ValueError, match="token_budget must be None or an int >= 0"):
        SerialProtocol(token_budget=-512)


def test_serial_never_spawns_even_on_a_calling_block(char_tok):
    ep = Episode(P, "serial", tokenizer=char_tok)
    assert ep.act(0, calling_block("0")) == "finish"
    assert ep.done and len(ep.threads) == 1 and ep.metrics.num_spawns == 0


def test_serial_structured_spawn_is_a_recorded_outcome_not_an_exception(char_tok):
    # BUG (episode.py act: Spawn calls protocol.render_spawn, which raises NotImplementedError for serial)
    ep = Episode(P, "serial", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    assert ep.done and len(ep.threads) == 1 and ep.outcome is not None


def test_serial_answer_path_verifies(worked_example, char_tok):
    ep = Episode(P, get_protocol("serial", token_budget=1024), tokenizer=char_tok)
    ep.act(0, "10,10 equal: Goal Reached\n" + worked_example.answer_path)
    assert ep.outcome == "correct" and ep.answer == worked_example.answer_path


def test_protocol_base_class_has_the_four_abstract_methods():
    assert Protocol.__abstractmethods__ == {"root_prompt", "parse_spawn", "join", "extract_answer"}


def test_a_protocol_without_an_answer_grammar_records_a_structured_answer_as_a_failure(char_tok):
    # The base Protocol has no spawn or answer grammar: both structured actions become recorded outcomes.
    from apr_env.protocols.base import Protocol

    class Bare(Protocol):
        name = "bare-test"

        def root_prompt(self, problem):
            return "go"

        def parse_spawn(self, thread):
            return None

        def join(self, parent, group, request_start, results):
            raise AssertionError("never joins")

        def extract_answer(self, thread):
            return None

    for action, reason in ((Answer("x"), "answer_not_supported"), (Spawn(("0",)), "spawn_not_supported")):
        ep = Episode(P, Bare(), tokenizer=char_tok)
        assert ep.act(0, action) == "fail"
        assert ep.done and ep.threads[0].reason == reason
