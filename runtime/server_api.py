"""The request models and response shapes of `apr-env serve`: SGLang's native ``/generate`` and
OpenAI's ``/v1/completions``, as pydantic models (validation) and plain builders (answers).

Field names, defaults and answers follow current SGLang (``srt/managers/io_struct.py``
``GenerateReqInput``, ``srt/sampling/sampling_params.py`` ``SamplingParams``,
``srt/entrypoints/http_server.py``) so SGLang's own frontend (`sglang.RuntimeEndpoint`) drives this
server unchanged. What this server cannot do is refused by name with a 400, never silently
ignored: every SGLang sampling key is accepted at its neutral value (SGLang's client always sends
``frequency_penalty=0``, ``min_p=0``, ``regex=None`` ...), and a non-neutral value of one we do
not implement (penalties, constrained decoding, ``n > 1``) is a 400 naming it.

Not here: routes, limits and auth (`runtime.server`), generation (the backend).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from runtime.backends.base import GenerationRequest, GenerationResult, SamplingParams

MAX_SEED = 2**63 - 1
"""Largest sampling seed accepted (torch seeds are 64-bit)."""
TokenId = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]
IdList = Annotated[list[TokenId], Field(min_length=1)]

SUPPORTED = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stop_token_ids",
    "sampling_seed",
)
ACCEPTED_NO_EFFECT = (
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "no_stop_trim",
    "stream_interval",
)
"""Text always keeps special tokens and the matched stop (what the HTTP clients ask for anyway)."""
NEUTRAL = {
    "n": 1,
    "min_p": 0.0,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "repetition_penalty": 1.0,
    "min_new_tokens": 0,
    "ignore_eos": False,
    "json_schema": None,
    "regex": None,
    "ebnf": None,
    "structural_tag": None,
    "stop_regex": None,
    "logit_bias": None,
    "custom_params": None,
    "beam_width": None,
}
"""SGLang sampling keys accepted only at these (no-op) values; [] counts as None."""


def _finite(value: float, info) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


class SGLangSampling(BaseModel):
    """``sampling_params`` of ``/generate`` (SGLang's defaults)."""

    model_config = ConfigDict(extra="allow")

    max_new_tokens: StrictInt = Field(128, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: StrictInt = Field(-1, ge=-1)
    stop: str | list[str] | None = None
    stop_token_ids: list[TokenId] | None = None
    sampling_seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED)

    _finite = field_validator("temperature", "top_p")(_finite)

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> SGLangSampling:
        extra = self.model_extra or {}
        unknown = sorted(set(extra) - set(NEUTRAL) - set(ACCEPTED_NO_EFFECT))
        if unknown:
            raise ValueError(
                f"unsupported sampling_params {unknown}; this server supports {sorted(SUPPORTED)}, accepts "
                f"{sorted(ACCEPTED_NO_EFFECT)} and SGLang's other keys at their neutral values"
            )
        active = sorted(k for k, v in extra.items() if k in NEUTRAL and not is_neutral(v, NEUTRAL[k]))
        if active:
            raise ValueError(
                f"unsupported sampling_params {active} (got { ({k: extra[k] for k in active}) }); this server "
                f"implements only their neutral values { ({k: NEUTRAL[k] for k in active}) }"
            )
        return self

    def to_sampling(self) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=stop,
            stop_token_ids=tuple(self.stop_token_ids or ()),
            seed=self.sampling_seed,
        )


def is_neutral(value: Any, neutral: Any) -> bool:
    """`value` leaves sampling as `neutral` does: None, [] and {} mean unset; False is not 0."""
    if value is None or value == [] or value == {}:
        return True
    if isinstance(value, bool) or isinstance(neutral, bool):
        return value is neutral
    return value == neutral


class GenerateReq(BaseModel):
    """The body of ``POST /generate`` (SGLang's ``GenerateReqInput``, the fields a text model uses)."""

    model_config = ConfigDict(extra="ignore")

    text: str | Annotated[list[str], Field(min_length=1)] | None = None
    input_ids: IdList | Annotated[list[IdList], Field(min_length=1)] | None = None
    sampling_params: SGLangSampling | list[SGLangSampling] | None = None
    return_logprob: StrictBool | list[StrictBool] | None = None
    logprob_start_len: StrictInt | list[StrictInt] | None = None
    top_logprobs_num: Annotated[StrictInt, Field(ge=0, le=20)] | list[StrictInt] | None = None
    return_text_in_logprobs: StrictBool = False
    stream: StrictBool = False
    rid: str | list[str] | None = None
    image_data: None = None

    @model_validator(mode="after")
    def _one_prompt_kind(self) -> GenerateReq:
        if (self.text is None) == (self.input_ids is None):
            raise ValueError("give exactly one of 'input_ids' or 'text'")
        return self

    @property
    def is_batch(self) -> bool:
        if self.text is not None:
            return isinstance(self.text, list)
        return isinstance(self.input_ids[0], list)

    def per_item(self, name: str, n: int) -> list:
        """One value per prompt: a list must match a batch item for item; a scalar applies to all."""
        value = getattr(self, name)
        if isinstance(value, list):
            if not self.is_batch or len(value) != n:
                raise ValueError(f"{name} is a list of {len(value)} but the request has {n} prompt(s)")
            return value
        return [value] * n


class CompletionReq(BaseModel):
    """The body of ``POST /v1/completions`` (the subset a completion model uses; OpenAI's names)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str | IdList | Annotated[list[str | IdList], Field(min_length=1)]
    max_tokens: StrictInt = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: StrictInt = Field(-1, ge=-1)
    stop: str | list[str] | None = None
    stop_token_ids: list[TokenId] | None = None
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED)
    logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    stream: StrictBool = False
    stream_options: dict | None = None
    n: Literal[1] = 1
    echo: Literal[False] = False
    suffix: None = None
    best_of: Literal[1] | None = None
    frequency_penalty: Literal[0] = 0
    presence_penalty: Literal[0] = 0
    logit_bias: None = None
    user: str | None = None
    return_token_ids: StrictBool = False
    return_tokens_as_token_ids: StrictBool = False
    skip_special_tokens: StrictBool = True
    no_stop_trim: StrictBool = False
    include_stop_str_in_output: StrictBool = False

    _finite = field_validator("temperature", "top_p")(_finite)

    def prompts(self) -> list[str | list[int]]:
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, int) for p in self.prompt):
            return [list(self.prompt)]
        return list(self.prompt)

    def to_sampling(self) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_new_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=stop,
            stop_token_ids=tuple(self.stop_token_ids or ()),
            seed=self.seed,
        )


class UpdateWeightsReq(BaseModel):
    """``POST /update_weights_from_disk`` (SGLang's ``UpdateWeightFromDiskReqInput``, the fields used)."""

    model_config = ConfigDict(extra="ignore")

    model_path: Annotated[str, Field(min_length=1)]
    load_format: str | None = None
    abort_all_requests: StrictBool = False


# ---------------------------------------------------------------- answers


def finish_reason_to_sglang(result: GenerationResult) -> dict:
    """`GenerationResult` -> SGLang's ``meta_info.finish_reason`` dict (schedule_batch.py FINISH_*)."""
    if result.finish_reason == "stop":
        return {"type": "stop", "matched": result.matched_stop}
    if result.finish_reason == "length":
        return {"type": "length", "length": result.completion_tokens}
    return {"type": "abort", "message": "generation aborted"}


def _entries(values: list[float | None], ids: list[int], decode, with_text: bool) -> list[list]:
    return [[v, t, decode([t]) if with_text else None] for v, t in zip(values, ids)]


def sglang_meta(
    result: GenerationResult,
    *,
    rid: str,
    return_logprob: bool,
    with_text: bool,
    decode,
    input_ids: list[int],
    input_logprobs: list[float] | None,
    logprob_start_len: int,
    finished: bool = True,
) -> dict:
    """``meta_info`` of one ``/generate`` answer (or stream chunk) in SGLang's shape."""
    meta: dict[str, Any] = {
        "id": rid,
        "finish_reason": finish_reason_to_sglang(result) if finished else None,
        "prompt_tokens": len(input_ids),
        "completion_tokens": result.completion_tokens,
        "cached_tokens": result.cached_tokens,
        "e2e_latency": result.timings.get("total"),
    }
    if return_logprob:
        # SGLang: -1 (the default) means no prompt logprobs; k >= 0 scores prompt tokens k.. onwards
        start = len(input_ids) if logprob_start_len < 0 else min(logprob_start_len, len(input_ids))
        scored = input_logprobs if input_logprobs is not None else [None] * len(input_ids)
        first = [None, *scored[1:]]  # SGLang: the first prompt token has no logprob
        meta["input_token_logprobs"] = _entries(first[start:], input_ids[start:], decode, with_text)
        meta["output_token_logprobs"] = _entries(
            list(result.logprobs or [None] * result.completion_tokens), result.output_ids, decode, with_text
        )
        if result.top_logprobs is not None:
            meta["input_top_logprobs"] = [None] * (len(input_ids) - start)
            meta["output_top_logprobs"] = [
                [[v, t, decode([t]) if with_text else None] for t, v in top] for top in result.top_logprobs
            ]
    return meta


def completion_choice(
    index: int, r: GenerationResult, req: CompletionReq, decode, *, text: str | None = None
) -> dict:
    """One ``choices[i]`` of a completions answer (or stream chunk when `text` is a delta)."""
    finish = r.finish_reason if r.finish_reason in ("stop", "length") else "abort"
    choice: dict[str, Any] = {
        "index": index,
        "text": r.text if text is None else text,
        "logprobs": None,
        "finish_reason": finish,
        "matched_stop": r.matched_stop if finish == "stop" else None,
    }
    if req.logprobs is not None:

        def spell(t: int) -> str:
            return f"token_id:{t}" if req.return_tokens_as_token_ids or decode is None else decode([t])

        tokens = [spell(t) for t in r.output_ids]
        offsets, pos = [], 0
        for token in tokens:
            offsets.append(pos)
            pos += len(token)
        lps = list(r.logprobs or [])
        if r.top_logprobs is not None and req.logprobs > 0:
            top = [{spell(t): v for t, v in entry} for entry in r.top_logprobs]
        else:
            top = [{t: lp} for t, lp in zip(tokens, lps)] if req.logprobs > 0 else None
        choice["logprobs"] = {
            "tokens": tokens,
            "token_logprobs": lps,
            "top_logprobs": top,
            "text_offset": offsets,
        }
    if req.return_token_ids:
        choice["token_ids"] = list(r.output_ids)
    return choice


def completion_body(model: str, choices: list[dict], results: list[GenerationResult]) -> dict:
    prompt_tokens = sum(r.prompt_tokens for r in results)
    completion_tokens = sum(r.completion_tokens for r in results)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": sum(r.cached_tokens for r in results)},
        },
    }


def generation_request(
    ids: list[int], sampling: SamplingParams, *, logprob: bool, top: int, rid: str | None
) -> GenerationRequest:
    request = GenerationRequest(
        input_ids=list(ids), sampling=sampling, return_logprob=logprob, top_logprobs_num=top
    )
    if rid:
        request.request_id = rid
    return request
