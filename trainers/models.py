"""Model presets over the Countdown tokenizer, and Hugging Face model folders made from them.

    apr-env model init --preset small --out runs/small-init --seed 0

Every preset is a Llama-2 style decoder (RMSNorm, RoPE, SwiGLU MLP, untied embeddings;
reference/apr-reference.md section 7.1) over the project's Countdown tokenizer
(`apr_env.tokenizer`: 187 ids, bos 1 / eos 2 / pad 0, one token per digit):

=======  ======  ======  =====  ========  =====  =======  ================================
preset   layers  hidden  heads  head_dim  MLP    context  parameters
=======  ======  ======  =====  ========  =====  =======  ================================
tiny     2       64      2      32        172    1024     ~0.1M (tests: seconds per step)
mini     4       128     4      32        344    2048     ~0.84M (the paper experiment's CPU scale)
small    4       256     4      64        688    2048     ~3.3M (CPU: minutes, see README)
paper    18      1024    16     64        2752   4096     227.7M non-embedding (the paper's)
=======  ======  ======  =====  ========  =====  =======  ================================

Every preset has head_dim >= 32, as vLLM's CPU attention backend requires, so any folder
written here can also be served by vLLM (and SGLang) on a CPU. `small` is shallow on purpose:
on a 2-core CPU a step's cost grows with depth (sequential kernels, little parallel work per
layer) faster than with width: at ~3.5M parameters, 4 layers of 256 trained ~1.7x the tokens/s
of 8 layers of 192 and about as fast as 2 layers of 384 (fp32 AdamW steps on 8 x 256 tokens,
best of 3, on the shared 2-core CPU of this project; noisy, but the ordering held).
`mini` trades width for speed: fp32 forward+backward+AdamW on 8 x 700 tokens with one thread ran
5,640 tokens/s against `small`'s 2,154 (2.6x; 10,192 vs 3,902 with two threads), which is what
lets the paper experiment's CPU scale give each SFT model ~10M tokens in under an hour.

`init_model` writes a folder (``config.json``, ``generation_config.json``,
``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``,
``special_tokens_map.json``) that ``AutoModelForCausalLM``/``AutoTokenizer`` load, and so
do the transformers backend, ``apr-env serve`` and ``apr-env eval --model``.
`check_model_folder` turns a missing or broken folder into one clear error.

What this module leaves to others: training (`trainers.sft`), serving (`runtime`).
"""

from __future__ import annotations

import os
from pathlib import Path

from apr_env.tokenizer import BOS_ID, EOS_ID, PAD_ID, default_tokenizer
from runtime.model_files import ModelFolderError
from runtime.model_files import check_model_folder as check_weights_folder

PRESETS: dict[str, dict] = {
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=172,
        max_position_embeddings=1024,
    ),
    "mini": dict(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=344,
        max_position_embeddings=2048,
    ),
    "small": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=688,
        max_position_embeddings=2048,
    ),
    "paper": dict(
        hidden_size=1024,
        num_hidden_layers=18,
        num_attention_heads=16,
        num_key_value_heads=16,
        intermediate_size=2752,
        max_position_embeddings=4096,
    ),
}
"""Architecture of each preset (the rest of the config is shared: see `model_config`)."""

MIN_HEAD_DIM = 32
"""vLLM's CPU attention needs head_dim >= 32; every preset keeps to it."""


def model_config(preset: str, **overrides):
    """The `transformers.LlamaConfig` of `preset` (a `PRESETS` name), with `overrides` applied.

    Raises:
        ValueError: an unknown preset (the message lists the known ones), or a head_dim below 32.
    """
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known presets: {', '.join(PRESETS)}")
    tok = default_tokenizer()
    arch = {**PRESETS[preset], **overrides}
    head_dim = arch["hidden_size"] // arch["num_attention_heads"]
    if head_dim < MIN_HEAD_DIM:
        raise ValueError(
            f"head_dim = hidden_size / num_attention_heads = {head_dim} is below {MIN_HEAD_DIM} "
            "(vLLM's CPU attention needs >= 32); use fewer heads"
        )
    return LlamaConfig(
        vocab_size=tok.vocab_size,
        rms_norm_eps=1e-6,  # reference 7.1
        rope_theta=10000.0,
        tie_word_embeddings=False,
        initializer_range=0.02,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        **arch,
    )


def count_parameters(config, *, embeddings: bool = True) -> int:
    """Parameters of a `LlamaForCausalLM` with `config`, counted on the meta device (nothing allocated)."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())
    if not embeddings:
        total -= model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return total


def init_model(preset: str, out: str | os.PathLike, seed: int = 0, **overrides) -> Path:
    """Write a randomly initialised `preset` model with the Countdown tokenizer into folder `out`.

    Same (preset, seed, overrides), same weights. Returns the folder.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    config = model_config(preset, **overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    out = Path(out)
    model.save_pretrained(out)
    default_tokenizer().save(out)
    return out


def check_model_folder(path: str | os.PathLike) -> Path:
    """`path` as a Path if it looks like a loadable model folder, else a `ModelFolderError` saying what is missing.

    The runtime's check (`runtime.model_files.check_model_folder`: the folder, ``config.json``
    naming a ``model_type``, weights with whole safetensors headers) plus ``tokenizer.json``,
    which training needs and serving does not. Loading itself can still fail on corrupt
    weights; `load_model` reports that with the path too.
    """
    folder = check_weights_folder(path)
    if not (folder / "tokenizer.json").is_file():
        raise ModelFolderError(
            f"model folder {str(folder)!r} has no tokenizer.json; expected the Countdown tokenizer's files "
            "beside the weights (`apr-env model init --preset tiny --out DIR` and `apr-env train sft` write them)"
        )
    return folder


def load_model(path: str | os.PathLike, **kwargs):
    """``AutoModelForCausalLM.from_pretrained(path, **kwargs)`` after `check_model_folder`.

    Raises:
        ModelFolderError: the folder is incomplete, or transformers could not read it (corrupt
            weights, a config it does not know); the message names the path and the cause.
    """
    from transformers import AutoModelForCausalLM

    folder = check_model_folder(path)
    try:
        return AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except Exception as err:  # safetensors, json and torch errors share no base class
        raise ModelFolderError(
            f"could not load the model in {str(folder)!r}: {type(err).__name__}: {str(err)[:300]}. "
            "Expected config.json and weights written by save_pretrained (e.g. by `apr-env model init`)"
        ) from err
