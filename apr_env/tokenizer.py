"""Token counting and encoding: the package's own Countdown tokenizer, or any Hugging Face one.

Every token metric of the environments (total, critical-path and context tokens) needs a
tokenizer. The default is the Countdown tokenizer built here, deterministically, with the
`tokenizers` library (no training, no download, no transformers import):

- Id layout (stable across builds and releases; new strings are only ever appended):
  ``<pad>`` 0, ``<s>`` (bos) 1, ``</s>`` (eos) 2, ``<unk>`` 3 (Llama-2's bos 1 / eos 2 / pad 0,
  reference section 7.1); then the alphabet, one token per character: ``\\t`` 4, ``\\n`` 5,
  and printable ASCII ``' '`` .. ``'~'`` at ``6 + ord(c) - 32`` (so the digit ``d`` is
  ``22 + d``); then the multi-character units of `MULTI_CHAR_TOKENS` in their listed order.
- Multi-character units are the trace grammar's fixed text (reference sections 2.5, 2.7,
  2.8, 4; `apr_env.grammar`): whole markers (``<End Calling Sub Searches>``), the fixed
  text between a line's variable fields with its spaces (``Current State: ``,
  ``, Resulting Numbers: ``), the shorter phrases and single words these are made of (so
  text that strays from the templates still takes few tokens) and the list separators
  (``, ``, ``', '``). Digits are never merged: every digit is one token.
- Encoding is a greedy longest match: a `Split` pre-tokenizer whose regex lists every
  multi-character unit, longest first, then any single character; a `WordLevel` model maps
  each piece to its id. Pieces concatenate to the input, so ``decode(encode(x)) == x``
  exactly for every string over the alphabet (tab, newline, printable ASCII), including
  runs of spaces and leading or trailing newlines. Any other character (non-ASCII,
  ``\\r``, control characters) becomes one ``<unk>`` per character and does not round-trip.
  The special tokens' own text (``<s>``, ``</s>``, ``<pad>``, ``<unk>``) typed in the input
  is read as the special token and decodes back to the same text.

`TextTokenizer` is the small interface the environments use (encode, decode, count, special
ids); `FastTokenizer` implements it over any `tokenizers.Tokenizer` and `ObjectTokenizer`
over any object with ``encode``/``decode``. `load_tokenizer` accepts None (ours), a Hugging
Face tokenizer folder or ``tokenizer.json`` (read through `tokenizers` only, so the env can
count with a user's model tokenizer without importing transformers), or any object with
``encode``/``decode``. `FastTokenizer.save` writes a folder that
``transformers.AutoTokenizer.from_pretrained`` loads (and therefore SGLang and vLLM), with
a Llama-2-like post-processor that prepends bos when special tokens are requested.

``apr_env/data/countdown_tokenizer.json`` is a snapshot of the built tokenizer; the tests
check that the build's whole vocabulary (every token and id) equals it, so appending a token
means refreshing it (command in tests/test_tokenizer.py). The module is over 300 lines because the vocabulary
table, whose order is the id contract, is spelled out here.

What this module leaves to others: which texts are counted and how (metrics), prompt
construction, and chat templates.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from apr_env.errors import AprEnvError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
SPECIAL_NAMES = (BOS, EOS, PAD, UNK)  # in role order: bos, eos, pad, unk
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

ALPHABET = "\t\n" + "".join(chr(c) for c in range(0x20, 0x7F))
"""Characters with their own token (ids 4..100); text over these round-trips exactly."""

# Never reorder or remove entries: ids are positions. Append new units at the end.
MULTI_CHAR_TOKENS = (
    # Whole markers and fixed lines (sections 2.5, 2.7, 2.8).
    "<Calling Sub Searches>",
    "<End Calling Sub Searches>",
    "<Sub Searches>",
    "<End Sub Searches>",
    "No solution found.",
    "No solution found in sub search",
    # Fixed text between variable fields, with the grammar's spaces.
    "Moving to Node #",
    "Current State: ",
    ", Operations: ",
    "Exploring Operation: ",
    ", Resulting Numbers: ",
    "Generated Node #",
    " Operation: ",
    " equal: Goal Reached",
    " unequal: No Solution",
    "<Start Sub Search ",
    "<Goal Reached in Sub Search ",
    "<No Solution in Sub Search ",
    " at level ",
    " at Node #",
    "Start Sub Search at level ",
    "Exit Sub Search at level ",
    "Sub Call Budget: ",
    "Token Budget: ",
    # The same phrases without the template's spaces.
    "<Start Sub Search",
    "<Goal Reached in Sub Search",
    "<No Solution in Sub Search",
    "Current State:",
    "Exploring Operation:",
    "Resulting Numbers:",
    "Operation:",
    "Operations:",
    "Goal Reached",
    "No Solution",
    "equal:",
    "unequal:",
    "at level",
    "at Node #",
    "Start Sub Search at level",
    "Exit Sub Search at level",
    "Sub Call Budget:",
    "Token Budget:",
    # Single words of the grammar.
    *(  # noqa: SIM905 (one string keeps the list short; the order is the id order)
        "Moving to Node Current State Exploring Operation Operations Resulting Numbers Generated Goal Reached "
        "No Solution solution found equal unequal at level in Start End Exit Calling Sub Search Searches sub "
        "search Call Budget Token"
    ).split(),
    # List separators of the Python list reprs (numbers and operation strings).
    ", ",
    ": ",
    "', '",
    "['",
    "']",
    "[]",
    # Broadcast protocol board (apr_env/protocols/broadcast.py), appended later: ids 183..186.
    "<Publish Dead End ",
    "<Publish Goal Reached at Node #",
    "<Board>",
    "<End Board>",
)

VOCABULARY = SPECIAL_TOKENS + tuple(ALPHABET) + MULTI_CHAR_TOKENS
"""Every token string; a token's id is its index."""


class TokenizerSpecError(AprEnvError, ValueError):
    """`load_tokenizer` got something that is not a tokenizer, folder or tokenizer.json."""


_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}")


def _pattern(units: Sequence[str]) -> str:
    """Regex alternation of `units`, longest first, then any single character (greedy longest match)."""
    ordered = sorted(units, key=lambda s: (-len(s), s))
    escaped = ("".join("\\" + c if c in _REGEX_SPECIAL else c for c in unit) for unit in ordered)
    return "|".join(escaped) + r"|[\s\S]"


def build_backend() -> Tokenizer:
    """The Countdown tokenizer as a `tokenizers.Tokenizer` (same vocabulary and ids every call)."""
    if len(set(VOCABULARY)) != len(VOCABULARY):  # internal invariant of the tables above
        raise AssertionError("duplicate token string in VOCABULARY")
    vocab = {token: i for i, token in enumerate(VOCABULARY)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_pattern(MULTI_CHAR_TOKENS)), behavior="isolated")
    backend.decoder = decoders.Fuse()  # concatenate pieces as they are: no spaces added or removed
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)]
    )
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return backend


CACHE_CHARS = 256
"""Longest text `TextTokenizer.count` keeps in its cache."""

MAX_TOKEN_CHARS = max(map(len, VOCABULARY))
"""Characters in the Countdown tokenizer's longest token (31): no token covers more."""

HEAD_MARGIN = 64
"""Tokens a prefix's encoding must hold past those `TextTokenizer.encode_head` takes from it."""


def _grow(size: int, tokens: int, wanted: int) -> int:
    """The next prefix length when `size` characters held `tokens` of the `wanted` tokens: scaled by
    the density seen so far (+20%), at least twice and at most eight times as long."""
    estimate = size * wanted * 6 // (5 * tokens) if tokens else 8 * size
    return min(8 * size, max(2 * size, estimate))


class TextTokenizer:
    """The interface the environments use to count and encode text; see `FastTokenizer`.

    Encoding never adds special tokens unless asked (`add_bos`, `add_eos`), whatever the
    underlying tokenizer would do by default, so counts mean the same for every tokenizer.
    Attributes: `vocab_size` and the special ids `bos_id`, `eos_id`, `pad_id`, `unk_id`
    (None when the tokenizer has no such token).
    """

    vocab_size: int | None
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None

    def __init__(self, count_cache_size: int = 4096):
        if count_cache_size < 0:
            raise ValueError(f"count_cache_size must be >= 0, got {count_cache_size}")
        # Prompts and contexts are counted again and again during an episode.
        self._count = functools.lru_cache(maxsize=count_cache_size)(self._count_uncached)

    def _ids(self, text: str) -> list[int]:
        raise NotImplementedError

    def _count_uncached(self, text: str) -> int:
        return len(self._ids(text))

    def _specials(self, add_bos: bool, add_eos: bool) -> tuple[list[int], list[int]]:
        for flag, wanted, role, token_id in (
            ("add_bos", add_bos, "bos", self.bos_id),
            ("add_eos", add_eos, "eos", self.eos_id),
        ):
            if wanted and token_id is None:
                raise ValueError(f"{flag}=True but this tokenizer has no {role} token; pass {flag}=False")
        return ([self.bos_id] if add_bos else []), ([self.eos_id] if add_eos else [])

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of `text`, with bos in front and eos at the end when asked."""
        head, tail = self._specials(add_bos, add_eos)
        return head + self._ids(text) + tail

    def encode_batch(
        self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """`encode` for many texts."""
        return [self.encode(text, add_bos, add_eos) for text in texts]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of `ids`; special tokens are kept as their text unless `skip_special_tokens`."""
        raise NotImplementedError

    def count(self, text: str, add_bos: bool = False, add_eos: bool = False) -> int:
        """``len(encode(text, add_bos, add_eos))``, remembered for recently counted short texts.

        Texts over `CACHE_CHARS` characters skip the cache: they rarely repeat, and hashing them
        for the lookup costs a good part of counting them.
        """
        if add_bos or add_eos:
            self._specials(add_bos, add_eos)
        n = self._count(text) if len(text) <= CACHE_CHARS else self._count_uncached(text)
        return n + int(add_bos) + int(add_eos)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts (no special tokens)."""
        return [len(ids) for ids in self.encode_batch(texts)]

    def count_upto(self, text: str, limit: int) -> int:
        """`count(text)` when that is at most `limit`, else some number above `limit`.

        The cost is bounded by `limit`, not by the text's length, so an action of megabytes
        costs what a window-sized one does: prefixes at least twice as long each time are counted
        until one holds more than `limit` + `HEAD_MARGIN` tokens (then so does the text: the
        margin covers a word that the prefix cut into more pieces than the whole text has),
        or the prefix is the whole text (then the count is exact).
        """
        size = limit + HEAD_MARGIN + 2  # printable ASCII: at most one token per character, +2
        while size < len(text):
            if self.count(text[:size]) > limit + HEAD_MARGIN:
                return limit + 1
            size *= 2
        return self.count(text)

    def encode_head(self, text: str, n: int) -> list[int]:
        """``encode(text)[:n]``, encoding only a prefix whose length is bounded by `n`.

        Growing prefixes (`_grow`) are encoded until one has `HEAD_MARGIN` tokens past
        the first `n`: a tokenizer decides a token from the text around it, never from text
        `HEAD_MARGIN` tokens further on (true of BPE, WordPiece and Unigram tokenizers in
        practice), so those `n` tokens are the whole text's. `CountdownTokenizer` proves it
        for its own tokens and needs no margin.
        """
        size = n + HEAD_MARGIN + 2
        while size < len(text):
            ids = self._ids(text[:size])
            if len(ids) >= n + HEAD_MARGIN:
                return ids[:n]
            size = _grow(size, len(ids), n + HEAD_MARGIN)
        return self._ids(text)[:n]

    def token_id(self, token: str) -> int:
        """The id of `token` when it is exactly one token (e.g. ``"<End Calling Sub Searches>"``).

        Raises:
            KeyError: `token` is not a single token of this tokenizer; the message gives its ids.
        """
        ids = self._ids(token)
        if len(ids) != 1:
            raise KeyError(f"{token!r} is not a single token of this tokenizer; it encodes as ids {ids}")
        return ids[0]


class FastTokenizer(TextTokenizer):
    """A `tokenizers.Tokenizer` (ours or any Hugging Face fast tokenizer's) as a `TextTokenizer`.

    Args:
        backend: the `tokenizers.Tokenizer` to use.
        bos_token, eos_token, pad_token, unk_token: special token strings (None when the
            tokenizer has none); each given one must be in the backend's vocabulary.
        count_cache_size: how many distinct texts `count` remembers; 0 disables the cache.
    """

    def __init__(
        self,
        backend: Tokenizer,
        *,
        bos_token: str | None = BOS,
        eos_token: str | None = EOS,
        pad_token: str | None = PAD,
        unk_token: str | None = UNK,
        count_cache_size: int = 4096,
    ):
        if not isinstance(backend, Tokenizer):
            raise TypeError(f"backend must be a tokenizers.Tokenizer, got {type(backend).__name__}")
        super().__init__(count_cache_size)
        self.backend = backend
        self.special_tokens = {"bos": bos_token, "eos": eos_token, "pad": pad_token, "unk": unk_token}
        ids = {}
        for role, token in self.special_tokens.items():
            ids[role] = None if token is None else backend.token_to_id(token)
            if token is not None and ids[role] is None:
                raise TokenizerSpecError(
                    f"{role}_token {token!r} is not in the tokenizer's vocabulary; "
                    f"pass {role}_token=None or the tokenizer's own {role} string"
                )
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = ids["bos"], ids["eos"], ids["pad"], ids["unk"]
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)

    def _ids(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(
        self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """`encode` for many texts in one call (the backend may use several threads)."""
        head, tail = self._specials(add_bos, add_eos)
        encodings = self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        return [head + e.ids + tail for e in encodings]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of `ids`; special tokens are kept as their text unless `skip_special_tokens`.

        Ids outside the vocabulary (e.g. from a model whose embedding table is padded past
        `vocab_size`) are dropped silently, as the `tokenizers` library does.
        """
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int:
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            pieces = self.backend.encode(token, add_special_tokens=False).tokens
            raise KeyError(f"{token!r} is not a single token of this tokenizer; it encodes as {pieces}")
        return token_id

    def id_to_token(self, token_id: int) -> str | None:
        """The string of one token id, or None when the id is outside the vocabulary."""
        return self.backend.id_to_token(token_id)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

        ``transformers.AutoTokenizer.from_pretrained(folder)`` then gives a fast tokenizer
        with the same ids and the special tokens set. Returns the folder.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(folder / "tokenizer.json"))
        specials = {f"{role}_token": tok for role, tok in self.special_tokens.items() if tok is not None}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": False,
            **specials,
        }
        for name, content in (("tokenizer_config.json", config), ("special_tokens_map.json", specials)):
            (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        return folder

    def __repr__(self) -> str:
        return f"FastTokenizer(vocab_size={self.vocab_size}, bos_id={self.bos_id}, eos_id={self.eos_id})"


def _trie_pattern(units: Sequence[str]) -> str:
    """A regex matching the longest of `units` at a position, written as a prefix tree.

    ``a(?:bc|d)?`` instead of ``abc|ad|a``: at each position the engine follows one branch
    per character instead of trying every unit in turn, which makes counting ~10x faster.
    """
    trie: dict = {}
    for unit in units:
        node = trie
        for ch in unit:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a unit may also end here: the longer continuation is optional (greedy)
            return f"(?:{body})?"
        return body

    return build(trie)


class CountdownTokenizer(FastTokenizer):
    """The Countdown tokenizer: `FastTokenizer` over `build_backend()` with a much faster `count`.

    Counting is the environments' hot path (every thread's text is counted once per
    episode). The pieces are the longest multi-character units at each position, else one
    character; so the count is ``len(text) - sum(len(unit) - 1)`` over the multi-character
    units found by a scan that skips every other position. Python's `re` runs that scan over a
    prefix-tree regex (`_trie_pattern`) at ~100 MB/s, about 25x the `tokenizers` encode used
    for ids. `tests/test_tokenizer.py` checks count == len(encode) on golden and random text.
    """

    def __init__(self, count_cache_size: int = 4096):
        super().__init__(build_backend(), count_cache_size=count_cache_size)
        self._units = re.compile(_trie_pattern(MULTI_CHAR_TOKENS + SPECIAL_TOKENS)).findall

    def _count_uncached(self, text: str) -> int:
        units = self._units(text)
        return len(text) - sum(map(len, units)) + len(units)

    def count_upto(self, text: str, limit: int) -> int:
        """`TextTokenizer.count_upto`, exact: no token covers more than `MAX_TOKEN_CHARS` characters,
        so a text longer than ``limit * MAX_TOKEN_CHARS`` has more than `limit` tokens."""
        return limit + 1 if len(text) > limit * MAX_TOKEN_CHARS else self.count(text)

    def encode_head(self, text: str, n: int) -> list[int]:
        """`TextTokenizer.encode_head`, exact with no margin.

        A token is the longest unit that starts where the one before it ended (special tokens
        included; no unit has ``<`` past its first character, so a special token cut by the
        prefix cannot lengthen a piece before it): it depends only on the next
        `MAX_TOKEN_CHARS` characters. A prefix's tokens that start at least that far from its
        end are therefore the whole text's, in order.
        """
        size = n + MAX_TOKEN_CHARS  # every token covers at least one character
        while size < len(text):
            enc = self.backend.encode(text[:size], add_special_tokens=False)
            if len(enc.ids) >= n and (n == 0 or enc.offsets[n - 1][0] + MAX_TOKEN_CHARS <= size):
                return enc.ids[:n]
            size = _grow(size, len(enc.ids), n) + MAX_TOKEN_CHARS
        return self._ids(text)[:n]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [self._count_uncached(text) for text in texts]


def build_tokenizer() -> CountdownTokenizer:
    """A new Countdown tokenizer (see the module docstring for the vocabulary and id layout)."""
    return CountdownTokenizer()


@functools.cache
def default_tokenizer() -> CountdownTokenizer:
    """The Countdown tokenizer, built once per process and shared."""
    return build_tokenizer()


def _special_from_config(folder: Path, role: str, vocab: dict[str, int], default: str) -> str | None:
    """The ``{role}_token`` string of a Hugging Face tokenizer folder, or None when it has none.

    Read from tokenizer_config.json, else special_tokens_map.json (a string or ``{"content": ...}``);
    when neither names the role, `default` (our name, e.g. ``<s>``, also Llama-2's) if it is in
    the vocabulary. A name missing from the vocabulary counts as none.
    """
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if f"{role}_token" in config:
            value = config[f"{role}_token"]
            value = value.get("content") if isinstance(value, dict) else value
            return value if isinstance(value, str) and value in vocab else None
    return default if default in vocab else None


def _load_path(path: Path) -> FastTokenizer:
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise TokenizerSpecError(
            f"no tokenizer at {str(path)!r}: expected a Hugging Face tokenizer folder holding tokenizer.json, "
            "or the path of a tokenizer.json file (slow, sentencepiece-only tokenizers are not supported)"
        )
    backend = Tokenizer.from_file(str(file))
    vocab = backend.get_vocab(with_added_tokens=True)
    roles = zip(("bos", "eos", "pad", "unk"), SPECIAL_NAMES)
    return FastTokenizer(
        backend, **{f"{role}_token": _special_from_config(file.parent, role, vocab, d) for role, d in roles}
    )


class ObjectTokenizer(TextTokenizer):
    """Any object with ``encode(text) -> ids`` and ``decode(ids) -> text`` as a `TextTokenizer`.

    A transformers tokenizer works (its ``encode`` is called with ``add_special_tokens=False``
    and its special ids are read from ``bos_token_id`` etc.); so does e.g. a tiktoken encoding.
    """

    def __init__(self, obj: Any, count_cache_size: int = 4096):
        super().__init__(count_cache_size)
        self.obj = obj
        self._encode_kwargs = (
            {"add_special_tokens": False} if _accepts(obj.encode, "add_special_tokens") else {}
        )
        self._decode_skips = _accepts(obj.decode, "skip_special_tokens")
        # Exact text: no clean-up of spaces before punctuation (transformers' option).
        self._decode_kwargs = (
            {"clean_up_tokenization_spaces": False}
            if _accepts(obj.decode, "clean_up_tokenization_spaces")
            else {}
        )
        self.bos_id = getattr(obj, "bos_token_id", None)
        self.eos_id = getattr(obj, "eos_token_id", None)
        self.pad_id = getattr(obj, "pad_token_id", None)
        self.unk_id = getattr(obj, "unk_token_id", None)
        self.vocab_size = len(obj) if hasattr(obj, "__len__") else getattr(obj, "n_vocab", None)

    def _ids(self, text: str) -> list[int]:
        return list(self.obj.encode(text, **self._encode_kwargs))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        if self._decode_skips:
            return self.obj.decode(list(ids), skip_special_tokens=skip_special_tokens, **self._decode_kwargs)
        if skip_special_tokens:
            special = {self.bos_id, self.eos_id, self.pad_id, self.unk_id} - {None}
            ids = [i for i in ids if i not in special]
        return self.obj.decode(list(ids), **self._decode_kwargs)


def _accepts(method: Any, name: str) -> bool:
    """Whether `method` takes keyword `name` (directly or through ``**kwargs``)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def load_tokenizer(spec: Any = None) -> TextTokenizer:
    """A tokenizer for token counts and ids, from one of the accepted specs.

    Args:
        spec: None for the Countdown tokenizer (`default_tokenizer`); a `TextTokenizer`
            (returned as is); a `tokenizers.Tokenizer` (our special token names assumed when
            present in its vocabulary); a path (str or PathLike) to a Hugging Face tokenizer
            folder or its ``tokenizer.json``, loaded with `tokenizers` only, special tokens
            read from ``tokenizer_config.json`` / ``special_tokens_map.json``; or any object
            with ``encode(text)`` and ``decode(ids)`` methods (a transformers tokenizer works:
            it is called with ``add_special_tokens=False``).

    Raises:
        TokenizerSpecError: the path holds no tokenizer.json, or `spec` is none of the above.
    """
    if spec is None:
        return default_tokenizer()
    if isinstance(spec, TextTokenizer):
        return spec
    if isinstance(spec, Tokenizer):
        vocab = spec.get_vocab(with_added_tokens=True)
        roles = zip(("bos", "eos", "pad", "unk"), SPECIAL_NAMES)
        return FastTokenizer(spec, **{f"{role}_token": (t if t in vocab else None) for role, t in roles})
    if isinstance(spec, (str, os.PathLike)):
        return _load_path(Path(spec))
    if callable(getattr(spec, "encode", None)) and callable(getattr(spec, "decode", None)):
        return ObjectTokenizer(spec)
    raise TokenizerSpecError(
        f"cannot use {type(spec).__name__} as a tokenizer; pass None (the Countdown tokenizer), a Hugging Face "
        "tokenizer folder or tokenizer.json path, a tokenizers.Tokenizer, or an object with encode/decode"
    )
