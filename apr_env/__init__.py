"""apr-env: Adaptive Parallel Reasoning on Countdown as standard RL environments.

Public names (see DESIGN.md "Public contract"):

- `Problem`, `generate_problems`, `split_problems`, `GeneratorConfig`: the game and its data.
- `solve`, `is_solvable`: the exact solver. `verify`, `Verdict`: the strict answer checker.

This package imports no torch, no transformers and no HTTP client; it stays fast to import.
"""

from apr_env.generator import GeneratorConfig, generate_problems, split_problems
from apr_env.problem import Problem, load_problems, save_problems
from apr_env.solver import is_solvable, solve
from apr_env.verifier import Verdict, verify

__version__ = "0.1.0"

__all__ = [
    "GeneratorConfig",
    "Problem",
    "Verdict",
    "__version__",
    "generate_problems",
    "is_solvable",
    "load_problems",
    "save_problems",
    "solve",
    "split_problems",
    "verify",
]
