"""The `apr-env` dispatcher: every package's commands assembled from the entry-point group.

Covers: the installed group lists every package with commands and each loads; the expected
commands exist exactly once; a package that fails to import is named in the help instead of
breaking the other commands; `apr_env`'s own command runs.
"""

from __future__ import annotations

import argparse

import pytest

from apr_env import cli

EXPECTED = {
    "demo": "apr_env",
    "serve": "runtime",
    "eval": "agents",
    "show": "agents",
    "data": "trainers",
    "train": "trainers",
    "bench": "benchmarks",
}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_entry_point_group_lists_every_package_with_commands():
    names = [ep.name for ep in cli._command_plugins()]
    assert names == ["runtime", "agents", "trainers", "benchmarks"]


@pytest.mark.parametrize("command, package", sorted(EXPECTED.items()), ids=sorted(EXPECTED))
def test_each_command_is_registered_by_its_package(command, package):
    parser = _subcommands(cli.build_parser())[command]
    handler = parser.get_default("func")
    if handler is None:  # a command group (data): its subcommands carry the handlers
        handler = next(iter(_subcommands(parser).values())).get_default("func")
    assert handler.__module__ == f"{package}.cli"


def test_a_package_that_cannot_be_imported_is_named_in_the_help(monkeypatch):
    class Broken:
        name, value = "broken", "broken.cli:register"

        def load(self):
            raise ImportError("No module named 'broken'")

    monkeypatch.setattr(cli, "_command_plugins", lambda: [Broken()])
    parser = cli.build_parser()
    assert "broken (broken.cli:register): No module named 'broken'" in parser.epilog
    assert set(_subcommands(parser)) == {"demo"}  # apr_env's own commands still work


def test_demo_runs(capsys):
    assert cli.main(["demo", "--n", "2", "--seed", "3"]) == 0
    assert "2 Countdown problems (seed 3" in capsys.readouterr().out


def test_config_flags_are_typed_by_default_or_annotation_and_must_be_documented():
    from dataclasses import dataclass, field

    from trainers.cli import _add_config_flags
    from trainers.grpo_config import GRPOConfig
    from trainers.ppo_config import PPOConfig
    from trainers.sft_config import SFTRunConfig

    def parse(cls, *argv):
        parser = argparse.ArgumentParser()
        _add_config_flags(parser, cls)
        return parser.parse_args(list(argv))

    args = parse(SFTRunConfig, "--minutes", "1.5", "--model", "runs/m", "--tokens", "7", "--no-condition")
    assert (args.minutes, args.model, args.tokens, args.condition) == (1.5, "runs/m", 7, False)
    assert SFTRunConfig(**vars(parse(SFTRunConfig))) == SFTRunConfig()  # defaults round-trip
    args = parse(GRPOConfig, "--url", "http://a", "--url", "http://b", "--protocol-kwargs", '{"k": 1}')
    assert (args.urls, args.protocol_kwargs, args.max_new_tokens) == (
        ["http://a", "http://b"],
        {"k": 1},
        None,
    )
    assert parse(PPOConfig, "--net-arch", "32", "16").net_arch == [32, 16]

    @dataclass
    class Undocumented:
        documented: int = 1
        """Has a doc line."""
        bare: list = field(default_factory=list)

    with pytest.raises(TypeError, match="without a doc line: bare"):
        parse(Undocumented)
