"""Policies that act in the apr-env environments: symbolic solvers, random, SB3 and LLM agents.

Importing `agents` registers ``APRCountdownMacro-v0`` (the numeric macro-action environment,
`agents.macro_env`) with Gymnasium; ``gym.make("agents:APRCountdownMacro-v0")`` imports it for you.
"""

import gymnasium

if "APRCountdownMacro-v0" not in gymnasium.registry:
    gymnasium.register(id="APRCountdownMacro-v0", entry_point="agents.macro_env:APRCountdownMacroEnv")
