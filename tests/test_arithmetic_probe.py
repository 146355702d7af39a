"""`benchmarks.arithmetic_probe`: the result digits are found exactly, and the score separates an
oracle from a model that is one token off."""

from __future__ import annotations

import pytest
import torch

from apr_env.tokenizer import default_tokenizer
from benchmarks.arithmetic_probe import generated_line_checks, operand_probe, probe, result_spans

TEXT = (
    "Current State: 42:[16, 5, 9], Operations: []\n"
    "Exploring Operation: 16-5=11, Resulting Numbers: [9, 11]\n"
    "Exploring Operation: 9*5=45, Resulting Numbers: [16, 45]\n"
)


def test_result_spans_point_at_the_result_digits():
    tok = default_tokenizer()
    ids = tok.encode(TEXT)
    spans = result_spans(ids, tok)
    assert [op for op, _ in spans] == ["-", "*"]
    assert [tok.decode([ids[k] for k in positions]) for _, positions in spans] == ["11", "45"]


def test_operand_spans_point_at_a_op_b():
    tok = default_tokenizer()
    ids = tok.encode(TEXT)
    spans = result_spans(ids, tok, "operands")
    assert [tok.decode([ids[k] for k in positions]) for _, positions in spans] == ["16-5", "9*5"]


def test_operation_spans_point_at_the_resulting_numbers_and_the_state():
    from benchmarks.arithmetic_probe import operation_spans

    tok = default_tokenizer()
    ids = tok.encode(TEXT + "Exploring Operation: 9+5=14\n")  # an operation row: no list
    spans = operation_spans(ids, tok)
    assert [tok.decode([ids[k] for k in s.numbers]) for s in spans] == ["9, 11]", "16, 45]", ""]
    assert [s.state for s in spans] == ["16, 5, 9"] * 3


def test_result_spans_reject_an_unknown_part():
    with pytest.raises(ValueError, match="operands"):
        result_spans([], default_tokenizer(), "digits")


class _Scripted(torch.nn.Module):
    """Predicts, at each position, the token `shift` places ahead (1 = the true next token)."""

    def __init__(self, ids: list[int], shift: int):
        super().__init__()
        self.ids, self.shift = ids, shift

    def forward(self, input_ids):
        n = input_ids.shape[1]
        logits = torch.zeros(1, n, 200)
        for k in range(n):
            logits[0, k, self.ids[min(k + self.shift, n - 1)]] = 1.0
        return type("Out", (), {"logits": logits})()


def test_probe_scores_an_oracle_1_and_a_shifted_model_0():
    tok = default_tokenizer()
    ids = tok.encode(TEXT)
    rows = [{"input_ids": ids}]
    oracle = probe(_Scripted(ids, 1), rows, tok)
    assert oracle["exact_result_accuracy"] == 1.0 and oracle["exact_operand_accuracy"] == 1.0
    shifted = probe(_Scripted(ids, 2), rows, tok)
    assert shifted["exact_result_accuracy"] == 0.0 and shifted["lines"] == 2
    assert shifted["exact_operand_accuracy"] == 0.0
    assert set(shifted["by_operator"]) == {"-", "*"}
    assert oracle["exact_list_by_state"] == {"3": 1.0} and shifted["exact_list_by_state"] == {"3": 0.0}


class _Writer:
    """`generate` continues a prompt with the true text (`fixed` None) or with fixed tokens."""

    def __init__(self, ids: list[int], fixed: list[int] | None = None):
        self.ids, self.fixed = ids, fixed

    def eval(self):
        return self

    def generate(self, input_ids, max_new_tokens, **_):
        n = input_ids.shape[1]
        more = self.fixed if self.fixed is not None else self.ids[n : n + max_new_tokens]
        return torch.tensor([input_ids[0].tolist() + more])


def test_operand_probe_checks_the_written_operands_against_the_last_state():
    tok = default_tokenizer()
    ids = tok.encode(TEXT)
    rows = [{"input_ids": ids}]
    oracle = operand_probe(_Writer(ids), rows, tok)
    assert oracle["lines"] == 2 and oracle["operands_in_state"] == 1.0 and oracle["well_formed"] == 1.0
    outside = operand_probe(_Writer(ids, tok.encode("16+7=23")), rows, tok)  # 7 is not in [16, 5, 9]
    assert outside["operands_in_state"] == 0.0 and outside["well_formed"] == 1.0
    twice = operand_probe(_Writer(ids, tok.encode("5*5=25")), rows, tok)  # one 5 only
    assert twice["operands_in_state"] == 0.0
    garbled = operand_probe(_Writer(ids, tok.encode("Moving")), rows, tok, max_lines=1)
    assert garbled["lines"] == 1 and garbled["well_formed"] == 0.0


def test_generated_line_checks_judge_only_what_the_model_wrote_against_its_current_state():
    prompt = "Moving to Node #0\nCurrent State: 42:[16, 5, 9], Operations: []"
    completion = (
        "\nExploring Operation: 16-5=11, Resulting Numbers: [9, 11]\n"  # in state, right, list right
        "Exploring Operation: 16-7=9, Resulting Numbers: [5, 9, 9]\n"  # 7 not in state, right
        "Exploring Operation: 9*5=44, Resulting Numbers: [16, 44]\n"  # in state, wrong, list right
        "Moving to Node #0,0\nCurrent State: 42:[9, 11], Operations: ['16-5=11']\n"
        "Exploring Operation: 9+16=25, Resulting Numbers: [25]\n"  # 16 no longer in state: list wrong
        "Exploring Operation: 11/9=1, Resulting Numbers: [1]\n"  # in state, not exact: wrong
        "Exploring Operation: 11/9=1, Resulting Numbers: [9, 1]\n"  # the same again, list wrong
    )
    solver_written = {"prompt": prompt + "\nExploring Operation: 16+7=20\n", "completion": ""}
    record = {"calls": [[{"prompt": prompt, "completion": completion}], [solver_written]]}
    checks = generated_line_checks([record])
    assert checks.pop("resulting_numbers_by_state") == pytest.approx(
        {"2": 1 / 3, "3": 3 / 3}
    )  # [9, 11]; [16, 5, 9]
    assert checks == pytest.approx(
        {
            "lines": 6,
            "operands_in_state": 4 / 6,
            "result_right": 3 / 6,
            "resulting_numbers_right": 4 / 6,
            "repeated": 1 / 6,
        }
    )
    assert generated_line_checks([])["lines"] == 0 and generated_line_checks([])["repeated"] == 0.0


def test_an_operation_in_the_prompt_counts_as_written_before_the_models_repeat():
    prompt = "Current State: 42:[16, 5, 9], Operations: []\nExploring Operation: 16-5=11, Resulting Numbers: [9, 11]"
    again = {"prompt": prompt, "completion": "\nExploring Operation: 16-5=11, Resulting Numbers: [9, 11]\n"}
    assert generated_line_checks([{"calls": [[again]]}])["repeated"] == 1.0


def test_the_solvers_own_lines_pass_every_check():
    """Solver traces are right by construction: a checker that flags them is wrong (and the few
    repeats are real: a state with a number twice gives the same operation from two pairs)."""
    from apr_env.generator import generate_problems
    from trainers.data import build_traces, segments

    records = build_traces(generate_problems(12, seed=4, min_numbers=4, max_numbers=4), "apr", seed=0)
    calls = [
        {"prompt": "", "completion": s["prompt"] + s["completion"]}
        for i, r in enumerate(records)
        for s in segments(r, i)
    ]
    checks = generated_line_checks([{"calls": [calls]}])
    assert checks["lines"] > 100
    assert checks["operands_in_state"] == checks["result_right"] == checks["resulting_numbers_right"] == 1.0
    assert checks["repeated"] < 0.05
    assert checks["resulting_numbers_by_state"] == {"2": 1.0, "3": 1.0, "4": 1.0}


def test_joined_goal_checks_count_roots_that_received_a_childs_goal():
    from apr_env.grammar import sub_goal_line, sub_none_line
    from benchmarks.arithmetic_probe import joined_goal_checks

    # Problem 10 from [1, 2, 3, 4]. A valid child path (1+2=3, 3+3=6, 4+6=10) and a false goal: its
    # parent wrote [3, 4, 4] after 1+2=3, so 4+4=8, 8+2=10 reaches 10 in the child's state only.
    valid = (
        "Moving to Node #0,1\nCurrent State: 10:[3, 3, 4], Operations: ['1+2=3']\n"
        "Exploring Operation: 3+3=6, Resulting Numbers: [4, 6]\nGenerated Node #0,1,0: 10:[4, 6] Operation: 3+3=6\n"
        "Moving to Node #0,1,0\nCurrent State: 10:[4, 6], Operations: ['1+2=3', '3+3=6']\n"
        "Exploring Operation: 4+6=10, Resulting Numbers: [10]\n10,10 equal: Goal Reached"
    )
    false = (
        "Moving to Node #0,1,0\nCurrent State: 10:[8, 2], Operations: ['1+2=3', '4+4=8']\n"
        "Exploring Operation: 8+2=10, Resulting Numbers: [10]\n10,10 equal: Goal Reached"
    )

    def episode(join: str, correct: bool) -> dict:
        root = [
            {"prompt": "Moving to Node #0", "completion": "..."},
            {"prompt": f"<Sub Searches>\n{join}\n<End Sub Searches>\n", "completion": ""},
        ]
        child = [{"prompt": sub_goal_line(0, 1, "0,0") + "\n" + valid, "completion": ""}]  # root prompts only
        return {
            "calls": [root, child],
            "correct": correct,
            "problem": {"target": 10, "numbers": [1, 2, 3, 4]},
        }

    goal, none = sub_goal_line(1, 1, "0,1"), sub_none_line(0, 1, "0,0")
    found = joined_goal_checks(
        [
            episode(f"{goal}\n{valid}", True),
            episode(f"{goal}\n{false}", False),
            episode(f"{goal}\n{false}\n{sub_goal_line(2, 1, '0,2')}\n{valid}", False),  # one valid is enough
            episode(f"{goal}\nnot a path", False),
            episode(f"{none}\n{valid}", False),  # a No Solution join is not a goal, whatever follows
            episode(none, False),
        ]
    )
    assert found == {
        "episodes": 6,
        "joined_goal": 4 / 6,
        "valid_when_joined": 0.5,
        "solved_when_joined": 0.25,
    }
    assert joined_goal_checks([]) == {
        "episodes": 0, "joined_goal": 0.0, "valid_when_joined": 0.0, "solved_when_joined": 0.0
    }  # fmt: skip
