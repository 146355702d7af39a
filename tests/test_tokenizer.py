"""Tests for apr_env.tokenizer: the Countdown tokenizer's layout, exact round trips, loaders.

Covers: special and character ids, atomic grammar units, digits one token each, exact
round trips (golden official traces, hypothesis texts built from grammar lines, any text over
the trace alphabet), <unk> outside it, counting, the append-only shipped snapshot, loading
the saved folder with transformers, and `load_tokenizer` for folders, files and objects.

The snapshot ``apr_env/data/countdown_tokenizer.json`` must hold exactly the built vocabulary
(every token string and id) and segment the golden traces alike; it is rewritten after appending
tokens with
``python -c "from apr_env.tokenizer import build_backend; build_backend().save('apr_env/data/countdown_tokenizer.json')"``.
"""

from __future__ import annotations

import functools
import json
import string
import subprocess
import sys
from pathlib import Path

import golden
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from apr_env import grammar
from apr_env.tokenizer import (
    FastTokenizer,
    TokenizerSpecError,
    build_backend,
    build_tokenizer,
    default_tokenizer,
    load_tokenizer,
)

SNAPSHOT = Path(__file__).resolve().parents[1] / "apr_env" / "data" / "countdown_tokenizer.json"
# The trace alphabet, written independently of the module: printable ASCII without \r \v \f.
TRACE_ALPHABET = string.digits + string.ascii_letters + string.punctuation + " \t\n"


def _walk(trace_dict: dict):
    yield from trace_dict["main_calls"]
    for group in trace_dict["sub_calls"]:
        for child in group:
            yield from _walk(child)


def _golden_texts() -> list[str]:
    apr = [text for problem in golden.APR for text in _walk(problem["trace_dict"])]
    return apr + [problem["search_path"] for problem in golden.SOSP]


GOLDEN_TEXTS = _golden_texts()


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


# ---------------------------------------------------------------------------------------
# Id layout and atomic units
# ---------------------------------------------------------------------------------------


def test_special_ids_follow_llama2_layout(tok):
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert [tok.id_to_token(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]


def test_alphabet_characters_have_ids_in_code_point_order(tok):
    assert tok.token_id("\t") == 4
    assert tok.token_id("\n") == 5
    for code in range(0x20, 0x7F):
        assert tok.token_id(chr(code)) == 6 + code - 0x20
    assert [tok.token_id(str(d)) for d in range(10)] == list(range(22, 32))


@pytest.mark.parametrize(
    "unit",
    [
        "<Calling Sub Searches>",
        "<End Calling Sub Searches>",
        "<Sub Searches>",
        "<End Sub Searches>",
        "<Start Sub Search",
        "<Goal Reached in Sub Search",
        "<No Solution in Sub Search",
        "Moving to Node #",
        "Current State:",
        "Exploring Operation:",
        "Resulting Numbers:",
        "Generated Node #",
        "Operation:",
        "Operations:",
        "Goal Reached",
        "No Solution",
        "No solution found.",
        "equal:",
        "unequal:",
        "at level",
        "Sub Call Budget:",
        "Token Budget:",
        "Start Sub Search at level",
        "Exit Sub Search at level",
        "No solution found in sub search",
        grammar.CALLING,
        grammar.END_CALLING,
        grammar.SUB_SEARCHES,
        grammar.END_SUB_SEARCHES,
        grammar.NO_SOLUTION,
        grammar.SOS_NO_SOLUTION_IN_SUB,
    ],
)
def test_grammar_marker_encodes_as_one_token(tok, unit):
    ids = tok.encode(unit)
    assert ids == [tok.token_id(unit)]
    assert tok.decode(ids) == unit


# Expected pieces are written with "|" between them.
@pytest.mark.parametrize(
    ("line", "pieces"),
    [
        (
            "Exploring Operation: 84+21=105, Resulting Numbers: [64, 23, 105]",
            "Exploring Operation: |8|4|+|2|1|=|1|0|5|, Resulting Numbers: |[|6|4|, |2|3|, |1|0|5|]",
        ),
        (
            "Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']",
            "Current State: |1|0|:|[|2|, |5|]|, Operations: |['|8|/|4|=|2|', '|6|-|1|=|5|']",
        ),
        ("Current State: 7:[7], Operations: []", "Current State: |7|:|[|7|]|, Operations: |[]"),
        (
            "Generated Node #0,1: 10:[1, 4] Operation: 8-6=2",
            "Generated Node #|0|,|1|: |1|0|:|[|1|, |4|]| Operation: |8|-|6|=|2",
        ),
        ("3,10 unequal: No Solution", "3|,|1|0| unequal: No Solution"),
        ("10,10 equal: Goal Reached", "1|0|,|1|0| equal: Goal Reached"),
        (
            "<Start Sub Search 0 at level 1> Moving to Node #0,0",
            "<Start Sub Search |0| at level |1|>| |Moving to Node #|0|,|0",
        ),
        (
            "<Goal Reached in Sub Search 2 at level 1 at Node #0,2>",
            "<Goal Reached in Sub Search |2| at level |1| at Node #|0|,|2|>",
        ),
        ("Sub Call Budget: 10 Moving to Node #0", "Sub Call Budget: |1|0| |Moving to Node #|0"),
        (
            "Start Sub Search at level 1: Moving to Node #0,1",
            "Start Sub Search at level |1|: |Moving to Node #|0|,|1",
        ),
        ("Exit Sub Search at level 2", "Exit Sub Search at level |2"),
        # Off-template text still uses the words: greedy longest match, then single characters.
        ("Moving  to Node", "Moving| | |to| |Node"),
        ("Operationsx", "Operations|x"),
    ],
)
def test_trace_line_splits_into_expected_units(tok, line, pieces):
    assert [tok.id_to_token(i) for i in tok.encode(line)] == pieces.split("|")


@given(digits=st.text(alphabet=string.digits, min_size=1, max_size=30))
def test_every_digit_is_its_own_token(digits):
    tok = default_tokenizer()
    assert tok.encode(digits) == [22 + int(d) for d in digits]


def test_build_is_deterministic():
    assert build_backend().to_str() == build_backend().to_str()


REFRESH = (
    'python -c "from apr_env.tokenizer import build_backend; '
    "build_backend().save('apr_env/data/countdown_tokenizer.json')\""
)


def vocabulary_drift(shipped: dict[str, int], built: dict[str, int]) -> dict[str, tuple]:
    """Tokens whose id differs between two vocabularies: token -> (snapshot id, built id), None if absent."""
    return {
        token: (shipped.get(token), built.get(token))
        for token in sorted(shipped.keys() | built.keys())
        if shipped.get(token) != built.get(token)
    }


def test_built_vocabulary_equals_the_shipped_snapshot(tok):
    shipped = Tokenizer.from_file(str(SNAPSHOT)).get_vocab(with_added_tokens=True)
    built = tok.backend.get_vocab(with_added_tokens=True)
    drift = vocabulary_drift(shipped, built)
    assert not drift, (
        f"the built vocabulary differs from {SNAPSHOT.name} (token: (snapshot id, built id)): {drift}. "
        "Shipped ids must never change: only append new tokens, then refresh the snapshot from the "
        f"repository root with {REFRESH}"
    )


def test_vocabulary_drift_names_changed_added_and_removed_tokens():
    shipped = {"<pad>": 0, "a": 1, "b": 2}
    built = {"<pad>": 0, "a": 2, "c": 3}
    assert vocabulary_drift(shipped, built) == {"a": (1, 2), "b": (2, None), "c": (None, 3)}


def test_snapshot_segments_the_golden_traces_like_the_build(tok):
    snapshot = Tokenizer.from_file(str(SNAPSHOT))
    assert [e.ids for e in snapshot.encode_batch(GOLDEN_TEXTS, add_special_tokens=False)] == tok.encode_batch(
        GOLDEN_TEXTS
    )


# ---------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------


def test_golden_traces_round_trip_exactly(tok):
    assert len(GOLDEN_TEXTS) > 80
    for ids, text in zip(tok.encode_batch(GOLDEN_TEXTS), GOLDEN_TEXTS):
        assert tok.decode(ids) == text


def test_golden_traces_never_produce_unk(tok):
    assert all(tok.unk_id not in ids for ids in tok.encode_batch(GOLDEN_TEXTS))


nums = st.lists(st.integers(0, 10_000), min_size=0, max_size=6)
small = st.integers(0, 99)
node_id = st.lists(st.integers(0, 12), min_size=1, max_size=5).map(lambda p: ",".join(map(str, p)))
op = st.tuples(small, st.sampled_from("+-*/"), small, st.integers(0, 9801)).map(
    lambda t: f"{t[0]}{t[1]}{t[2]}={t[3]}"
)
fragment = st.one_of(
    node_id.map(grammar.moving_line),
    st.builds(grammar.state_line, small, nums, st.lists(op, max_size=3)),
    st.builds(grammar.exploring_line, op, nums),
    st.builds(grammar.generated_line, node_id, small, nums, op),
    st.builds(grammar.goal_line, small, small),
    st.builds(grammar.unequal_line, small, small),
    st.builds(grammar.start_sub_line, small, small, node_id),
    st.builds(grammar.sub_goal_line, small, small, node_id),
    st.builds(grammar.sub_none_line, small, small, node_id),
    st.builds(grammar.sos_start_sub_line, small, node_id),
    st.builds(grammar.sos_exit_sub_line, small),
    st.builds(grammar.sub_call_budget_prefix, small),
    st.builds(grammar.token_budget_prefix, st.integers(0, 4096)),
    st.sampled_from([grammar.CALLING, grammar.END_CALLING, grammar.SUB_SEARCHES, grammar.END_SUB_SEARCHES]),
    st.sampled_from([grammar.NO_SOLUTION, grammar.SOS_NO_SOLUTION_IN_SUB]),
    st.text(alphabet=string.digits, max_size=8),
    st.text(alphabet=" \n", max_size=5),
    st.text(alphabet="[],:'#=+-*/()<>.", max_size=4),
)


@settings(max_examples=300)
@given(parts=st.lists(fragment, max_size=25))
def test_text_built_from_grammar_fragments_round_trips(parts):
    tok = default_tokenizer()
    text = "".join(parts)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.unk_id not in ids


@settings(max_examples=300)
@given(text=st.text(alphabet=TRACE_ALPHABET, max_size=200))
def test_any_text_over_the_trace_alphabet_round_trips(text):
    tok = default_tokenizer()
    assert tok.decode(tok.encode(text)) == text


def test_bos_and_eos_wrap_the_text_and_can_be_skipped_at_decode(tok):
    text = "Moving to Node #0\n"
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids[1:-1] == tok.encode(text)
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(ids) == "<s>" + text + "</s>"


def test_special_token_text_in_input_reads_as_the_special_token_and_round_trips(tok):
    assert tok.encode("<s>1</s>") == [tok.bos_id, 23, tok.eos_id]
    assert tok.decode(tok.encode("a<s>b<pad>")) == "a<s>b<pad>"


@pytest.mark.parametrize("char", ["\r", "é", "€", "\x00", "\u200b", "😀"], ids=repr)
def test_character_outside_the_alphabet_becomes_one_unk(tok, char):
    assert tok.encode(f"1{char}2") == [23, tok.unk_id, 24]


def test_decode_drops_ids_outside_the_vocabulary(tok):
    assert tok.decode([23, tok.vocab_size + 7, 24]) == "12"


# ---------------------------------------------------------------------------------------
# Counting and lookups
# ---------------------------------------------------------------------------------------


def test_count_equals_encode_length(tok):
    for text in GOLDEN_TEXTS[:50]:
        assert tok.count(text) == len(tok.encode(text))
        assert tok.count(text, add_bos=True, add_eos=True) == len(tok.encode(text)) + 2
        assert tok.count(text) == len(tok.encode(text))  # second call answered by the cache


def test_count_batch_equals_counts(tok):
    assert tok.count_batch(GOLDEN_TEXTS[:50]) == [len(tok.encode(t)) for t in GOLDEN_TEXTS[:50]]


def test_count_without_cache_still_counts():
    from apr_env.tokenizer import FastTokenizer

    uncached = FastTokenizer(build_backend(), count_cache_size=0)
    assert uncached.count("12 34") == 5


# ---------------------------------------------------------------------------------------
# Counting and encoding only as much of a text as a window can take (count_upto, encode_head)
# ---------------------------------------------------------------------------------------


class _CharTokenizer:
    """One token per character, as an encode/decode object (`ObjectTokenizer`)."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))


def _bpe(byte_level: bool) -> FastTokenizer:
    """A small BPE tokenizer trained here on golden traces (no download). Without a pre-tokenizer a
    merge may span anything (the whole text is one word): the hardest case for a prefix's tokens."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    alphabet = []
    if byte_level:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>"], initial_alphabet=alphabet, show_progress=False
    )
    backend.train_from_iterator(GOLDEN_TEXTS[:20], trainer)
    return FastTokenizer(backend, bos_token=None, eos_token=None, pad_token=None)


HEAD_TOKENIZERS = {
    "countdown": build_tokenizer,
    "bpe": lambda: _bpe(byte_level=False),
    "byte_level_bpe": lambda: _bpe(byte_level=True),
    "char_object": lambda: load_tokenizer(_CharTokenizer()),
}


@functools.cache
def head_tokenizer(name: str):
    return HEAD_TOKENIZERS[name]()


# grammar text, special tokens' text and long runs of one character (a single word of any length)
head_text = st.lists(
    st.one_of(
        fragment,
        st.sampled_from(["<s>", "</s>", "<pad>", "<unk>", "<", "<s", "<un"]),
        st.builds(lambda c, n: c * n, st.sampled_from("x7 \n"), st.integers(1, 400)),
    ),
    max_size=40,
).map("".join)


@pytest.mark.parametrize("name", list(HEAD_TOKENIZERS))
@settings(max_examples=150, deadline=None)
@given(text=head_text, n=st.integers(0, 400))
def test_encode_head_is_the_head_of_the_whole_texts_encoding(name, text, n):
    tok = head_tokenizer(name)
    assert tok.encode_head(text, n) == tok.encode(text)[:n]


@pytest.mark.parametrize("name", list(HEAD_TOKENIZERS))
@settings(max_examples=150, deadline=None)
@given(text=head_text, limit=st.integers(0, 400))
def test_count_upto_is_exact_up_to_the_limit_and_above_it_past_the_limit(name, text, limit):
    tok = head_tokenizer(name)
    count, got = tok.count(text), tok.count_upto(text, limit)
    assert got == count if count <= limit else got > limit


@pytest.mark.parametrize("name", list(HEAD_TOKENIZERS))
def test_encode_head_and_count_upto_of_ten_megabytes_read_a_prefix(name):
    tok = head_tokenizer(name)
    text = ("Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n" * 200_000)[: 10 * 2**20]
    head_text_ = text[:40_000]  # 4,000 tokens of any of these tokenizers lie well inside it
    assert tok.encode_head(text, 4000) == tok.encode(head_text_)[:4000]
    assert tok.count_upto(text, 4000) > 4000


def test_token_id_of_a_multi_token_string_raises_with_its_pieces(tok):
    with pytest.raises(KeyError, match=r"'12' is not a single token.*\['1', '2'\]"):
        tok.token_id("12")


def test_default_tokenizer_is_built_once():
    assert default_tokenizer() is default_tokenizer()
    assert load_tokenizer(None) is default_tokenizer()


# ---------------------------------------------------------------------------------------
# Saving, transformers and load_tokenizer
# ---------------------------------------------------------------------------------------


def test_saved_folder_has_hugging_face_files(tok, tmp_path):
    tok.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"tokenizer.json", "tokenizer_config.json"}
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["pad_token"], config["unk_token"]) == (
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
    )


@pytest.mark.parametrize("loader", ["PreTrainedTokenizerFast", "AutoTokenizer"])
def test_transformers_loads_saved_folder_with_same_ids_and_exact_decode(tok, tmp_path, loader):
    transformers = pytest.importorskip("transformers")
    tok.save(tmp_path)
    hf = getattr(transformers, loader).from_pretrained(str(tmp_path))
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id, hf.unk_token_id) == (0, 1, 2, 3)
    assert len(hf) == tok.vocab_size
    texts = [*GOLDEN_TEXTS[:40], "\n\n  Moving to Node #0  \n", ""]
    for text in texts:
        ids = tok.encode(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids
        assert hf(text)["input_ids"] == tok.encode(text, add_bos=True)  # Llama-2 style: bos added
        decoded = hf.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert decoded == text


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    folder = build_tokenizer().save(tmp_path_factory.mktemp("countdown_tokenizer"))
    return transformers.AutoTokenizer.from_pretrained(str(folder))


@settings(max_examples=150)
@given(
    text=st.text(alphabet=TRACE_ALPHABET + "<>", max_size=120) | st.lists(fragment, max_size=8).map("".join)
)
def test_transformers_tokenizer_agrees_on_any_trace_alphabet_text(hf_tokenizer, text):
    tok = default_tokenizer()
    ids = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == tok.encode(text)
    assert hf_tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text


def test_load_tokenizer_reads_a_folder_and_a_tokenizer_json(tok, tmp_path):
    tok.save(tmp_path)
    text = "Current State: 10:[2, 5], Operations: []\n"
    for spec in (tmp_path, str(tmp_path / "tokenizer.json")):
        loaded = load_tokenizer(spec)
        assert loaded.encode(text, add_bos=True) == tok.encode(text, add_bos=True)
        assert (loaded.bos_id, loaded.eos_id, loaded.pad_id, loaded.unk_id) == (1, 2, 0, 3)


def _user_tokenizer_folder(folder: Path, config: dict) -> Path:
    """A tiny foreign tokenizer: word level over a few words, with its own special tokens."""
    vocab = {"[UNK]": 0, "<|begin|>": 1, "<|end|>": 2, "hello": 3, "world": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_load_tokenizer_reads_special_tokens_of_a_foreign_folder(tmp_path):
    folder = _user_tokenizer_folder(
        tmp_path / "user",
        {"bos_token": {"content": "<|begin|>"}, "eos_token": "<|end|>", "unk_token": "[UNK]"},
    )
    user = load_tokenizer(folder)
    assert (user.bos_id, user.eos_id, user.pad_id, user.unk_id) == (1, 2, None, 0)
    assert user.encode("hello world", add_bos=True, add_eos=True) == [1, 3, 4, 2]
    assert user.count("hello world hello") == 3


def test_load_tokenizer_falls_back_to_standard_names_unless_the_config_says_none(tok, tmp_path):
    tok.backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": None}))
    loaded = load_tokenizer(tmp_path)
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id, loaded.unk_id) == (1, 2, None, 3)


def test_add_bos_without_a_bos_token_raises(tmp_path):
    user = load_tokenizer(_user_tokenizer_folder(tmp_path / "user", {}))
    assert user.bos_id is None
    with pytest.raises(ValueError, match="add_bos=True but this tokenizer has no bos token"):
        user.encode("hello", add_bos=True)


def test_load_tokenizer_wraps_an_object_with_encode_and_decode(tok, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok.save(tmp_path)
    wrapped = load_tokenizer(transformers.AutoTokenizer.from_pretrained(str(tmp_path)))
    text = "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0,0\n"
    assert wrapped.encode(text) == tok.encode(text)  # the object's own bos is not added
    assert wrapped.encode(text, add_eos=True)[-1] == 2
    assert wrapped.decode(tok.encode(text)) == text
    assert wrapped.token_id("<End Calling Sub Searches>") == tok.token_id("<End Calling Sub Searches>")


class _CharTokenizer:
    """A minimal foreign tokenizer: encode/decode only, no keyword arguments (like tiktoken)."""

    bos_token_id = 0

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def test_load_tokenizer_wraps_a_plain_encode_decode_object():
    wrapped = load_tokenizer(_CharTokenizer())
    ids = wrapped.encode("ab", add_bos=True)
    assert ids == [0, 97, 98]
    assert wrapped.count("abc") == 3
    assert wrapped.decode(ids, skip_special_tokens=True) == "ab"
    with pytest.raises(ValueError, match="add_eos=True but this tokenizer has no eos token"):
        wrapped.encode("ab", add_eos=True)


def test_load_tokenizer_wraps_a_tokenizers_object(tok):
    assert load_tokenizer(build_backend()).encode("12", add_bos=True) == tok.encode("12", add_bos=True)


@pytest.mark.parametrize("spec", [42, ["not", "a", "tokenizer"]], ids=["int", "list"])
def test_load_tokenizer_rejects_what_is_not_a_tokenizer(spec):
    with pytest.raises(TokenizerSpecError, match=r"cannot use .* as a tokenizer"):
        load_tokenizer(spec)


def test_load_tokenizer_rejects_a_folder_without_tokenizer_json(tmp_path):
    with pytest.raises(
        TokenizerSpecError, match=r"no tokenizer at .*expected a Hugging Face tokenizer folder"
    ):
        load_tokenizer(tmp_path)


def test_importing_the_tokenizer_does_not_import_transformers():
    code = "import sys, apr_env.tokenizer; bad = {'transformers', 'torch'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
