"""Check a model folder before transformers loads it, so a bad path fails with a message that names it.

Without this, ``from_pretrained('/missing')`` answers "Repo id must be in the form ..." (it takes
the path for a hub id), a folder holding something else answers "expected value at line 1
column 1", and a truncated ``.safetensors`` file "invalid header length": none says which file
or what was expected. `check_model_folder` looks at the folder first (cheap: it reads JSON and
the safetensors headers, never the tensors) and raises `ModelFolderError` naming the path and
what a model folder must hold. Used by ``apr-env serve``, ``apr-env eval --backend transformers``
and (with a check for the tokenizer on top) `trainers.models.load_model`.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from apr_env.errors import AprEnvError

EXPECTED = (
    "a local transformers model folder: config.json plus weights (*.safetensors or pytorch_model*.bin), "
    "as written by save_pretrained"
)


class ModelFolderError(AprEnvError, ValueError):
    """A model path that cannot be loaded; the message names the path and what was expected."""


def _check_safetensors(path: Path) -> None:
    """The file's header is whole JSON and every tensor's bytes lie inside the file (catches truncation)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelFolderError(
                f"{path} is truncated ({size} bytes): a safetensors file starts with an 8-byte header length"
            )
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            raise ModelFolderError(
                f"{path} is truncated or not safetensors: its header claims {n} bytes but the file has {size}"
            )
        try:
            header = json.loads(f.read(n))
        except ValueError as err:
            raise ModelFolderError(
                f"{path} is not a safetensors file: its header is not JSON ({err})"
            ) from err
    if not isinstance(header, dict):
        raise ModelFolderError(f"{path} is not a safetensors file: its header is not a JSON object")
    end = max(
        (t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)),
        default=0,
    )
    if 8 + n + end > size:
        raise ModelFolderError(
            f"{path} is truncated: its tensors need {8 + n + end} bytes, the file has {size}; copy it again"
        )


def check_model_folder(path: str | os.PathLike) -> Path:
    """Raise `ModelFolderError` unless `path` looks like a loadable model folder; returns it as a Path."""
    folder = Path(path)
    if not folder.exists():
        raise ModelFolderError(f"model folder {str(folder)!r} does not exist; expected {EXPECTED}")
    if not folder.is_dir():
        raise ModelFolderError(f"{str(folder)!r} is a file, not a folder; expected {EXPECTED}")
    config = folder / "config.json"
    if not config.is_file():
        raise ModelFolderError(f"{str(folder)!r} has no config.json; expected {EXPECTED}")
    try:
        data = json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{config} is not valid JSON ({err}); expected a transformers config") from err
    if not isinstance(data, dict) or "model_type" not in data:
        raise ModelFolderError(f"{config} has no 'model_type'; expected a transformers model config")
    tensors = sorted(folder.glob("*.safetensors"))
    if not tensors and not list(folder.glob("pytorch_model*.bin")):
        raise ModelFolderError(f"{str(folder)!r} holds no weights; expected {EXPECTED}")
    for file in tensors:
        _check_safetensors(file)
    return folder
