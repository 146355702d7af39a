"""Inference backends behind one interface (`base.Backend`): transformers, SGLang, OpenAI-compatible."""

from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult, SamplingParams

__all__ = ["Backend", "BackendError", "GenerationRequest", "GenerationResult", "SamplingParams"]
