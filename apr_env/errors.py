"""Errors raised by apr-env.

Every class subclasses a built-in (`ValueError`, `TypeError`, `KeyError`), so callers that
already catch the built-in keep working. Messages say what was wrong, the value received,
what is accepted and, where there is one, how to fix it.

Environments never raise these for bad *model output*: malformed text becomes a recorded
outcome with a reward. These are for bad *arguments* from the person writing the code.
"""

from __future__ import annotations

import difflib


class AprEnvError(Exception):
    """Base class of every apr-env error."""


class ConfigError(AprEnvError, ValueError):
    """A configuration field is out of range or inconsistent with another field."""


class ProblemFormatError(AprEnvError, ValueError):
    """A problem record (dict, JSON line) does not have the official layout."""


class UnknownNameError(AprEnvError, KeyError):
    """A registry lookup (protocol, agent, backend) named something that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        hint = difflib.get_close_matches(str(name), known, n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        self.message = f"unknown {kind} {name!r}.{did_you_mean} Known: {', '.join(sorted(known))}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.message


class DependencyNotInstalled(AprEnvError, ImportError):
    """An optional dependency is missing; the message names the pip extra that provides it."""
