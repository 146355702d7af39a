"""SGLang's own frontend (`import sglang as sgl`: `RuntimeEndpoint`, `sgl.gen`, `sgl.select`,
streaming) drives `apr-env serve` over a tiny model, with an API key, unchanged.

`sglang` is installed without its dependencies (`make setup`), plus the few its frontend imports
(see the Makefile); where they are missing the module is skipped with the reason.
"""

from __future__ import annotations

import httpx
import pytest
from tiny_models import make_tiny_llama, save_tiny_model

from apr_env.tokenizer import default_tokenizer
from runtime.backends.transformers_backend import TransformersBackend
from runtime.server import serve

sgl = pytest.importorskip(
    "sglang", reason="sglang's frontend needs `make setup` (sglang --no-deps plus its imports)"
)

PROMPT = "Moving to Node #0\nCurrent State: 10:[1, 4, 6, 8], Operations: []\n"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    tok = default_tokenizer()
    folder = save_tiny_model(
        tmp_path_factory.mktemp("tiny"), make_tiny_llama(tok.vocab_size, seed=4, max_pos=128), tok
    )
    backend = TransformersBackend(str(folder), tok)
    with serve(backend, tokenizer=tok, api_key="k") as server:
        yield server, sgl.RuntimeEndpoint(server.url, api_key="k")
    backend.close()


@sgl.function
def continue_prompt(s):
    s += PROMPT
    s += sgl.gen("out", max_tokens=8, temperature=0)


@sgl.function
def pick(s, choices):
    s += PROMPT
    s += sgl.select("choice", choices=choices)


def test_gen_through_sglangs_frontend_matches_the_native_route(endpoint):
    server, backend = endpoint
    state = continue_prompt.run(backend=backend)
    native = httpx.post(
        server.url + "/generate",
        json={"text": PROMPT, "sampling_params": {"max_new_tokens": 8, "temperature": 0}},
        headers={"Authorization": "Bearer k"},
        timeout=30,
    ).json()
    assert state["out"] == native["text"] and len(native["output_ids"]) == 8
    backend.flush_cache()


def test_streaming_through_sglangs_frontend_gives_the_same_text(endpoint):
    _, backend = endpoint
    whole = continue_prompt.run(backend=backend)["out"]
    state = continue_prompt.run(backend=backend, stream=True)
    pieces = list(state.text_iter("out"))
    assert "".join(pieces) == whole and len(pieces) > 1


def test_select_ranks_choices_by_prompt_logprobs(endpoint):
    _, backend = endpoint
    choices = ["Exploring", "1", "+", "No Solution"]
    first = pick.run(backend=backend, choices=choices)["choice"]
    assert first in choices
    assert pick.run(backend=backend, choices=choices)["choice"] == first  # greedy: the same every time
