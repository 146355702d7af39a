"""`benchmarks.arithmetic_probe`: the result digits are found exactly, and the score separates an
oracle from a model that is one token off."""

from __future__ import annotations

import torch

from apr_env.tokenizer import default_tokenizer
from benchmarks.arithmetic_probe import probe, result_spans

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
    assert probe(_Scripted(ids, 1), rows, tok)["exact_result_accuracy"] == 1.0
    shifted = probe(_Scripted(ids, 2), rows, tok)
    assert shifted["exact_result_accuracy"] == 0.0 and shifted["lines"] == 2
    assert set(shifted["by_operator"]) == {"-", "*"}
