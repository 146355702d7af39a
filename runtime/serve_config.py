"""`apr-env serve`'s settings as a dataclass and its flags: standard library only, so building the
``apr-env --help`` parser never imports FastAPI, uvicorn or torch (the server lives in `runtime.server`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields


@dataclass
class ServeConfig:
    """What `apr-env serve` needs; each field's ``doc`` is its CLI help."""

    model: str = field(default="", metadata={"doc": "transformers model folder to serve (required)"})
    host: str = field(
        default="127.0.0.1", metadata={"doc": "interface to listen on (0.0.0.0 exposes it to the network)"}
    )
    port: int = field(
        default=30000, metadata={"doc": "TCP port (0 picks a free one); 30000 is SGLang's default"}
    )
    api_key: str = field(
        default="", metadata={"doc": "require 'Authorization: Bearer KEY' on every route (as SGLang's)"}
    )
    weights_dir: str = field(
        default="",
        metadata={
            "doc": "/update_weights_from_disk loads only folders under this one ('' disables the route)"
        },
    )
    max_running_requests: int = field(
        default=256, metadata={"doc": "requests generating at once; more get 429 with Retry-After"}
    )
    max_body_mb: float = field(default=64.0, metadata={"doc": "largest request body, in MiB (413 beyond)"})

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ServeConfig.model is required: the path of a transformers model folder")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_running_requests < 1:
            raise ValueError(f"max_running_requests must be >= 1, got {self.max_running_requests}")
        if not self.max_body_mb > 0:
            raise ValueError(f"max_body_mb must be > 0, got {self.max_body_mb}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `ServeConfig`'s fields as ``--flags`` (help text from each field's doc)."""
    for f in fields(ServeConfig):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=f.default,
            required=f.name == "model",
            help=f.metadata["doc"],
        )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(**{f.name: getattr(args, f.name) for f in fields(ServeConfig)})
