"""The official solver's traces (tests/data/official-traces.json, see its README), loaded once.

The file ships with the repository, so golden tests never skip: a missing file is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).resolve().parent / "data" / "official-traces.json"
GOLDEN = json.loads(PATH.read_text())
APR: list[dict] = GOLDEN["apr"]
"""40 APR problems with the solver's trace_dict, official answer and verdict."""
SOSP: list[dict] = GOLDEN["sosp"]
"""40 SoS+ problems with the solver's search_path and solved flag."""
