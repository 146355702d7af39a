"""apr-env: Adaptive Parallel Reasoning on Countdown as standard RL environments.

Public names (see DESIGN.md "Public contract"):

- `Problem`, `generate_problems`, `split_problems`, `GeneratorConfig`: the game and its data.
- `solve`, `is_solvable`: the exact solver. `verify`, `Verdict`: the strict answer checker.
- ``gymnasium.make("APRCountdown-v0", **kwargs)`` (registered on import) and
  `parallel_env(**kwargs)` (PettingZoo): spawn/join threads as environments.
- `Episode`: the rules of threads that both environments and the runtime drive.
- `get_protocol`, `register_protocol`: communication protocols by name.

This package imports no torch, no transformers and no HTTP client; it stays fast to import.
"""

import gymnasium

from apr_env.episode import Episode
from apr_env.generator import GeneratorConfig, generate_problems, split_problems
from apr_env.limits import Limits
from apr_env.problem import Problem
from apr_env.problem_files import load_problems, save_problems
from apr_env.protocols import Protocol, get_protocol
from apr_env.protocols import register as register_protocol
from apr_env.rewards import RewardConfig
from apr_env.solver import is_solvable, solve
from apr_env.verifier import Verdict, verify

__version__ = "0.1.0"

if "APRCountdown-v0" not in gymnasium.registry:
    gymnasium.register(id="APRCountdown-v0", entry_point="apr_env.envs.gym_env:APRCountdownEnv")


def parallel_env(**kwargs):
    """The PettingZoo `ParallelEnv` version of APRCountdown (same kwargs as ``gymnasium.make``)."""
    from apr_env.envs.parallel_env import APRCountdownParallelEnv

    return APRCountdownParallelEnv(**kwargs)


__all__ = [
    "Episode",
    "GeneratorConfig",
    "Limits",
    "Problem",
    "Protocol",
    "RewardConfig",
    "Verdict",
    "__version__",
    "generate_problems",
    "get_protocol",
    "is_solvable",
    "load_problems",
    "parallel_env",
    "register_protocol",
    "save_problems",
    "solve",
    "split_problems",
    "verify",
]
