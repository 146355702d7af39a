"""Specification of the protocols from the paper's future work: `first_k`, `messaging`, `subscriptions`.

Covers: straggler control (join on the first verified goal or the first k ended children; the
rest cancelled with their subtrees; their tokens count in total tokens, the critical path ends
at the join; a late action of a cancelled thread is ignored without a format error; PettingZoo
drops a cancelled agent; the continuous runner drops its in-flight request); bounded messages
(named siblings and the parent, prefill accounting, budget, size, unknown and ended
recipients); subscriptions (only matching board lines, unknown topics recorded); the symbolic
policies under each; and the hypothesis fuzz of both environments with the new grammar lines.
Episodes use the per-character tokenizer.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apr_env
from agents.symbolic import SymbolicAgent, SymbolicConfig
from apr_env import Episode, Limits, generate_problems
from apr_env.actions import Text
from apr_env.tree import Status
from runtime.runner import RunConfig, run_episodes

NEW = ["first_k", "messaging", "subscriptions"]
PROBLEMS = generate_problems(60, seed=3)


def _spawn(ex, *options: str) -> str:
    """The worked example's first root segment with option lines inside its calling block."""
    end = "<End Calling Sub Searches>"
    return ex.root_segment_0.replace(end, "".join(f"{o}\n" for o in options) + end)


# --------------------------------------------------------------------------------------
# first_k: straggler control
# --------------------------------------------------------------------------------------


def test_join_on_goal_cancels_the_straggler_and_the_path_ends_at_the_join(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "first_k", tokenizer=char_tok)
    assert ep.act(0, _spawn(ex, "<Join On Goal>")) == "spawn" and not ep.format_errors
    bulky = "Exploring Operation: 2+6=8, Resulting Numbers: [8]\n" * 10  # longer than the winner's text
    assert ep.act(2, Text(bulky, partial=True)) == "partial"
    assert ep.act(1, ex.child_actions[0]) == "finish"  # a verified goal: the race is over
    straggler = ep.threads[2]
    assert straggler.status is Status.FAILED and straggler.reason == "cancelled"
    assert ep.groups[0].cancelled == [2] and ep.runnable == [0]
    assert ep.threads[0].calls[1].inserted == ex.join_block  # the straggler joins as 'No Solution'
    assert ep.act(2, "more text") == "ignored" and not ep.format_errors  # the episode's decision
    ep.act(0, ex.root_continuation)
    assert ep.outcome == "correct"
    m = ep.metrics
    own = [t.generated_tokens for t in ep.threads]
    assert own[2] > own[1] > 0
    assert m.total_tokens == sum(own)  # the cancelled thread's tokens so far count
    assert m.critical_path_tokens == own[0] + own[1]  # ... but not on the path: it ends at the join


def test_apr_waits_for_the_same_straggler(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(2, Text("Exploring Operation: 2+6=8, Resulting Numbers: [8]\n", partial=True))
    ep.act(1, ex.child_actions[0])
    assert ep.runnable == [2] and ep.threads[0].status is Status.WAITING


def test_join_first_k_cancels_the_rest_including_grandchildren(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "first_k", limits=Limits(max_depth=2), tokenizer=char_tok)
    ep.act(0, _spawn(ex, "<Join First 1>"))
    block = "<Calling Sub Searches>\n<Start Sub Search 0 at level 2> Moving to Node #0,0,0\n<Join First 1>\n"
    assert ep.act(1, block + "<End Calling Sub Searches>") == "spawn"  # child 0 waits on a grandchild
    assert ep.runnable == [2, 3]
    assert ep.act(2, ex.child_actions[1]) == "finish"  # no solution, but the first to end: k = 1
    assert [ep.threads[i].reason for i in (1, 3)] == ["cancelled", "cancelled"]
    assert ep.runnable == [0] and ep.groups[0].cancelled == [1] and not ep.format_errors
    assert "<No Solution in Sub Search 0 at level 1 at Node #0,0,0>" in ep.threads[0].calls[1].inserted
    m = ep.metrics
    assert m.critical_path_tokens == ep.threads[0].generated_tokens + ep.threads[2].generated_tokens


@pytest.mark.parametrize("line", ["<Join First 0>", "<Join First x>", "<Join Whenever>"])
def test_a_malformed_join_option_is_recorded_and_the_spawn_waits_for_all(worked_example, char_tok, line):
    ex = worked_example
    ep = Episode(ex.problem, "first_k", tokenizer=char_tok)
    ep.act(0, _spawn(ex, line))
    assert (0, "malformed_spawn_line") in ep.format_errors and ep.groups[0].quorum is None
    ep.act(2, ex.child_actions[1])
    assert ep.runnable == [1]


def test_apr_treats_join_options_as_malformed_lines(worked_example, char_tok):
    ep = Episode(worked_example.problem, "apr", tokenizer=char_tok)
    ep.act(0, _spawn(worked_example, "<Join On Goal>"))
    assert (0, "malformed_spawn_line") in ep.format_errors and not ep.groups[0].race


def test_pettingzoo_drops_a_cancelled_agent(worked_example):
    ex = worked_example
    env = apr_env.parallel_env(protocol="first_k")
    env.reset(options={"problem": ex.problem})
    env.step({"t0": _spawn(ex, "<Join On Goal>")})
    assert env.agents == ["t0", "t1", "t2"]
    _, _, terms, _, infos = env.step(
        {"t1": ex.child_actions[0], "t2": Text("Moving to Node #0,0,1\n", partial=True)}
    )
    assert terms["t2"] and infos["t2"]["reason"] == "cancelled" and infos["t2"]["event"] == "ignored"
    assert env.agents == ["t0"] and not env.episode.format_errors


# --------------------------------------------------------------------------------------
# messaging
# --------------------------------------------------------------------------------------


def test_children_are_named_and_a_message_is_prefill_in_the_recipients_context(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "messaging", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    assert ep.observation(1) == "<Sub Search 0 of 2>\n" + ex.child_prompts[0]
    assert ep.observation(2) == "<Sub Search 1 of 2>\n" + ex.child_prompts[1]
    before = ep.metrics.prefill_tokens
    ep.act(2, Text("<Message To Sub Search 0: try 2*5>", partial=True))
    received = "<Message From Sub Search 1: try 2*5>\n"
    assert ep.observation(1).endswith(received) and ep.threads[1].calls[-1].inserted == received
    # the message, and the "\n" the episode put before the sender's action (its context ended mid-line)
    assert ep.metrics.prefill_tokens == before + len(received) + 1
    assert received not in ep.observation(2) and not ep.format_errors


def test_a_message_to_the_parent_arrives_after_its_join_block(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "messaging", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(2, Text("<Message To Parent: 2, 6 is hopeless>", partial=True))
    assert "hopeless" not in ep.observation(0)  # the parent waits: held until it resumes
    ep.act(1, ex.child_actions[0])
    ep.act(2, ex.child_actions[1])
    assert (
        ep.threads[0].calls[1].inserted == ex.join_block + "<Message From Sub Search 1: 2, 6 is hopeless>\n"
    )


def test_message_bounds_are_recorded_no_ops(worked_example, char_tok):
    ex = worked_example
    ep = Episode(
        ex.problem, apr_env.protocols.MessagingProtocol(max_messages=3, max_chars=5), tokenizer=char_tok
    )
    ep.act(0, ex.root_segment_0)
    ep.act(
        2,
        Text(
            "<Message To Sub Search 7: hi>\n<Message To Sub Search 1: me>\n"
            "<Message To Sub Search 0: too long>\n<Message To Sub Search 0: late>",
            partial=True,
        ),
    )
    codes = [code for tid, code in ep.format_errors if tid == 2]
    assert codes == [
        "message_to_unknown_thread",
        "message_to_unknown_thread",
        "message_too_long",
        "message_budget_exhausted",
    ]
    assert "Message From" not in ep.observation(1)
    ep.act(1, ex.child_actions[0])  # child 0 ends: a message to it is undelivered, not an error
    n_errors = len(ep.format_errors)
    ep2 = Episode(ex.problem, "messaging", tokenizer=char_tok)
    ep2.act(0, ex.root_segment_0)
    ep2.act(1, Text("x", partial=True))
    ep2.act(2, Text("y", partial=True))
    ep2.act(1, "No solution found.")
    ep2.act(2, Text("<Message To Sub Search 0: done>", partial=True))
    assert ep2.undelivered == [(2, "message_to_ended_thread")] and not ep2.format_errors
    assert ep2.summary()["undelivered"] == 1 and len(ep.format_errors) == n_errors


def test_messages_arrive_as_pettingzoo_observation_text(worked_example):
    env = apr_env.parallel_env(protocol="messaging")
    env.reset(options={"problem": worked_example.problem})
    env.step({"t0": worked_example.root_segment_0})
    obs, *_ = env.step(
        {"t1": Text("Moving on\n", partial=True), "t2": Text("<Message To Sub Search 0: hi>", partial=True)}
    )
    assert obs["t1"]["context"].endswith("<Message From Sub Search 1: hi>\n")


def test_messaging_rejects_bad_bounds():
    with pytest.raises(ValueError, match="max_messages"):
        apr_env.protocols.get_protocol("messaging", max_messages=0)
    with pytest.raises(ValueError, match="max_chars"):
        apr_env.protocols.get_protocol("messaging", max_chars="9")


# --------------------------------------------------------------------------------------
# subscriptions
# --------------------------------------------------------------------------------------


def test_a_subscriber_receives_only_matching_board_lines(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "subscriptions", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(1, Text("<Subscribe Dead Ends With 5, 7>\n<Subscribe Weather>", partial=True))
    assert ep.format_errors == [(1, "unknown_topic")]
    ep.act(2, Text("<Publish Dead End 10:[2, 6]>\n<Publish Dead End 10:[3, 5]>", partial=True))
    assert ep.observation(1).endswith("<Board>\n<Publish Dead End 10:[3, 5]>\n<End Board>\n")
    ep.act(1, Text("<Publish Goal Reached at Node #0,0,0>", partial=True))
    assert "<Board>" not in ep.observation(2)  # child 1 subscribed to nothing
    ep.act(2, Text("<Subscribe Goal Reached>\n<Subscribe Dead Ends>", partial=True))
    ep.act(1, Text("<Publish Dead End 10:[9, 9]>\n<Publish Goal Reached at Node #0,0,0>", partial=True))
    assert ep.observation(2).endswith(
        "<Board>\n<Publish Dead End 10:[9, 9]>\n<Publish Goal Reached at Node #0,0,0>\n<End Board>\n"
    )


# --------------------------------------------------------------------------------------
# Symbolic policies and the runner
# --------------------------------------------------------------------------------------


def _mean(records, key):
    return statistics.fmean(r["metrics"][key] for r in records)


@pytest.mark.parametrize("protocol", NEW)
def test_symbolic_agent_plays_each_new_protocol_cleanly_and_reproducibly(protocol):
    cfg = SymbolicConfig(beam_size=4)
    a = run_episodes(SymbolicAgent(cfg), PROBLEMS[:20], RunConfig(protocol=protocol))
    b = run_episodes(SymbolicAgent(cfg), PROBLEMS[:20], RunConfig(protocol=protocol, max_concurrent=3))
    assert [r["metrics"] for r in a] == [r["metrics"] for r in b]
    assert all(not r["format_errors"] for r in a)
    apr = run_episodes(SymbolicAgent(cfg), PROBLEMS[:20], RunConfig(protocol="apr"))
    assert [r["correct"] for r in a] == [r["correct"] for r in apr]  # the same search, talking differently


def test_first_k_saves_decode_and_latency_at_apr_accuracy():
    cfg = SymbolicConfig(beam_size=6)
    apr = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="apr"))
    race = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="first_k"))
    assert [r["correct"] for r in race] == [r["correct"] for r in apr]
    assert _mean(race, "total_tokens") < _mean(apr, "total_tokens")
    assert _mean(race, "critical_path_tokens") < _mean(apr, "critical_path_tokens")
    assert any(t["reason"] == "cancelled" for r in race for t in r["tree"])


def test_join_first_one_cancels_more_and_never_solves_more():
    base = run_episodes(SymbolicAgent(SymbolicConfig(beam_size=6)), PROBLEMS, RunConfig(protocol="first_k"))
    k1 = run_episodes(
        SymbolicAgent(SymbolicConfig(beam_size=6, join_first=1)), PROBLEMS, RunConfig(protocol="first_k")
    )
    cancelled = lambda rs: sum(t["reason"] == "cancelled" for r in rs for t in r["tree"])  # noqa: E731
    assert cancelled(k1) > cancelled(base)
    assert sum(r["correct"] for r in k1) <= sum(r["correct"] for r in base)


def test_subscriptions_make_broadcasts_decisions_and_read_less():
    cfg = SymbolicConfig(beam_size=6)
    board = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="broadcast", record_calls=True))
    subs = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="subscriptions", record_calls=True))
    tok = apr_env.tokenizer.load_tokenizer(None)
    for b, s in zip(board, subs):
        lines = sum(
            tok.count(line + "\n")
            for t in s["calls"]
            for c in t
            for line in c["completion"].split("\n")
            if line.startswith("<Subscribe ")
        )
        # the same search: only the subscription lines are generated on top of broadcast's text
        assert s["metrics"]["total_tokens"] == b["metrics"]["total_tokens"] + lines
        assert s["metrics"]["prefill_tokens"] <= b["metrics"]["prefill_tokens"]
    assert _mean(subs, "prefill_tokens") < _mean(board, "prefill_tokens")


def test_messaging_children_stop_when_a_sibling_reports_the_goal():
    cfg = SymbolicConfig(beam_size=6)
    apr = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="apr"))
    msg = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="messaging"))
    assert _mean(msg, "total_tokens") < _mean(apr, "total_tokens")
    assert _mean(msg, "prefill_tokens") > _mean(apr, "prefill_tokens")  # the messages are read


class _SubmitAgent:
    """The symbolic agent behind `submit` (one worker, so requests queue as on a busy server)."""

    name = "symbolic-submit"

    def __init__(self):
        self.inner = SymbolicAgent(SymbolicConfig(beam_size=6))
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.cancelled: list[tuple[int, int]] = []

    def act(self, observations):
        return self.inner.act(observations)

    def submit(self, obs):
        return self.pool.submit(lambda: self.inner.act([obs])[0])

    def cancel(self, episode, thread):
        self.cancelled.append((episode, thread))

    def end_episode(self, episode):
        self.inner.end_episode(episode)


def test_continuous_runner_drops_requests_of_cancelled_threads():
    agent = _SubmitAgent()
    records = run_episodes(agent, PROBLEMS[:20], RunConfig(protocol="first_k", max_concurrent=4))
    agent.pool.shutdown()
    assert agent.cancelled and all(not r["format_errors"] for r in records)
    for episode, thread in agent.cancelled:
        assert records[episode]["tree"][thread]["reason"] == "cancelled"
    waves = run_episodes(
        SymbolicAgent(SymbolicConfig(beam_size=6)), PROBLEMS[:20], RunConfig(protocol="first_k")
    )
    assert [r["correct"] for r in records] == [r["correct"] for r in waves]


# --------------------------------------------------------------------------------------
# Fuzz: any action a recorded outcome, never an exception
# --------------------------------------------------------------------------------------

NEW_LINES = st.sampled_from(
    [
        "<Join On Goal>",
        "<Join First 1>",
        "<Join First 2>",
        "<Join First 0>",
        "<Message To Sub Search 0: hi>",
        "<Message To Sub Search 1: Goal Reached>",
        "<Message To Sub Search 9: x>",
        "<Message To Parent: hello>",
        "<Message To Parent: " + "z" * 150 + ">",
        "<Subscribe Goal Reached>",
        "<Subscribe Dead Ends>",
        "<Subscribe Dead Ends With 2, 6>",
        "<Subscribe Nonsense>",
        "<Publish Dead End 10:[2, 6]>",
        "<Publish Goal Reached at Node #0,0>",
    ]
)


def _with_new_lines(fuzz):
    """Fuzz actions with the new protocols' lines mixed in, inside calling blocks too."""
    end = "<End Calling Sub Searches>"
    spawns = st.builds(
        lambda s, extra: s.replace(end, "\n".join([*extra, end])),
        fuzz.spawns,
        st.lists(NEW_LINES, max_size=3),
    )
    lines = st.builds(
        lambda a, extra: Text("\n".join(extra) + ("\n" + a if isinstance(a, str) else ""), partial=True),
        fuzz.actions,
        st.lists(NEW_LINES, min_size=1, max_size=3),
    )
    return spawns, st.one_of(fuzz.actions, lines, spawns)


@pytest.mark.parametrize("protocol", NEW)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_gymnasium_random_actions_never_raise(protocol, fuzz, data):
    spawns, actions = _with_new_lines(fuzz)
    limits = data.draw(fuzz.limits, label="limits")
    plan = [data.draw(spawns, label="first"), *data.draw(st.lists(actions, max_size=6), label="actions")]
    env = gym.make("APRCountdown-v0", protocol=protocol, limits=limits)
    _, info = env.reset(seed=data.draw(st.integers(0, 10_000), label="seed"))
    if "outcome" in info:
        return
    bound = fuzz.step_bound(limits)
    for step in range(bound):
        _, _, term, trunc, info = env.step(plan[step % len(plan)])
        if term or trunc:
            break
    assert term or trunc, f"no end after {bound} steps"
    m = info["metrics"]
    assert m["num_threads"] <= limits.max_threads and m["critical_path_tokens"] <= m["total_tokens"]


@pytest.mark.parametrize("protocol", NEW)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_pettingzoo_random_actions_never_raise_and_ended_agents_leave(protocol, fuzz, data):
    spawns, actions = _with_new_lines(fuzz)
    limits = data.draw(fuzz.limits, label="limits")
    plan = [data.draw(spawns, label="first"), *data.draw(st.lists(actions, max_size=6), label="actions")]
    env = apr_env.parallel_env(protocol=protocol, limits=limits)
    env.reset(seed=data.draw(st.integers(0, 10_000), label="seed"))
    turn = 0
    for _ in range(fuzz.step_bound(limits)):
        if not env.agents:
            break
        step = {}
        for agent in env.agents:
            step[agent] = plan[turn % len(plan)]
            turn += 1
        obs, _, terms, truncs, infos = env.step(step)
        for agent in obs:
            ended = terms[agent] or truncs[agent]
            assert (agent in env.agents) == (not ended)
            if infos[agent]["reason"] == "cancelled":
                assert ended
    assert not env.agents, "no end within the step bound"
    m = env.episode.metrics
    assert m.num_threads <= limits.max_threads and m.critical_path_tokens <= m.total_tokens
