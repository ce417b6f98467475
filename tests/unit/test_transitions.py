"""The pure event transitions of the audit log (`audit.register_fields`, `audit.promote_fields`).

They compute the next event from the last one and raise ConflictError when the stage policy
refuses; no storage is involved. A property test drives random sequences of registers and
promotions and checks the invariants every event must keep.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omr_workflows.errors import ConflictError

try:  # the transitions live in their own module since the split of audit.py
    from omr_workflows.events import AliasState, Event
    from omr_workflows.transitions import promote_fields, register_fields
except ImportError:  # pragma: no cover - before the split
    from omr_workflows.audit import AliasState, Event, promote_fields, register_fields

TS = "2026-01-01T00:00:00+00:00"


def dg(version: str) -> str:
    return "sha256:" + (format(abs(hash(version)) % 16**8, "08x") * 8)


def nxt(last: Event | None, fields: dict) -> Event:
    """Build the event `fields` describe, chained on `last` (as `audit.append` does)."""
    return Event(seq=(last.seq + 1) if last else 1, prev=("0" * 64) if last else "", **fields)


def reg(last, version, set_latest=True, kind="register"):
    return nxt(last, register_fields(last, kind=kind, task="t", model="m", version=version, digest=dg(version),
                                     meta_sha256=None, manifest_sha256=None, set_latest=set_latest, actor="a",
                                     reason=None, ts=TS))


def pro(last, version, to, rollback=False, demote_to="archived"):
    return nxt(last, promote_fields(last, task="t", model="m", version=version, digest=dg(version), to=to,
                                    rollback=rollback, demote_to=demote_to, actor="a", reason="r", ts=TS))


# ---------------------------------------------------------------------- register
def test_first_register():
    e = reg(None, "v1")
    assert e.seq == 1 and e.kind == "register" and e.alias == "latest" and e.from_version is None
    assert e.aliases == {"latest": AliasState(version="v1", seq=1)}
    assert e.digests == {"v1": dg("v1")} and e.stages == {}
    assert e.digest == dg("v1") and e.reason == "register"


def test_latest_moves_and_old_digest_is_dropped():
    e1 = reg(None, "v1")
    e2 = reg(e1, "v2")
    assert e2.seq == 2 and e2.from_version == "v1"
    assert e2.aliases["latest"] == AliasState(version="v2", seq=2)
    assert e2.digests == {"v2": dg("v2")}  # v1 holds no alias any more


def test_register_without_latest():
    e1 = reg(None, "v1")
    e2 = reg(e1, "v2", set_latest=False)
    assert e2.alias is None and e2.from_version is None
    assert e2.aliases == e1.aliases
    assert e2.digests == {"v1": dg("v1")}
    assert e2.digest == dg("v2")  # the event itself records the new version's digest


def test_adopt_kind():
    e1 = reg(None, "v1")
    e2 = reg(e1, "v0", set_latest=False, kind="adopt")
    assert e2.kind == "adopt" and e2.reason == "adopt" and e2.aliases == e1.aliases


def test_register_keeps_stages():
    e = pro(reg(None, "v1"), "v1", "production")
    e = reg(e, "v2")
    assert e.stages == {"v1": "production"}
    assert e.aliases["production"].version == "v1"
    assert set(e.digests) == {"v1", "v2"}


def test_transitions_do_not_mutate_their_input():
    e1 = pro(reg(None, "v1"), "v1", "production")
    snap = copy.deepcopy(e1.model_dump())
    reg(e1, "v2")
    with pytest.raises(ConflictError):
        pro(e1, "v1", "archived")
    pro(reg(e1, "v2"), "v2", "production")
    assert e1.model_dump() == snap


# ---------------------------------------------------------------------- promote
def test_promote_to_production():
    e = pro(reg(None, "v1"), "v1", "production")
    assert e.kind == "promote" and e.alias == "production" and e.from_version is None
    assert e.stage_moves == {"v1": "production"} and e.stages == {"v1": "production"}
    assert e.aliases["production"] == AliasState(version="v1", seq=2)
    assert e.aliases["latest"].version == "v1"


@pytest.mark.parametrize("demote_to", ["archived", "staging"])
def test_production_demotes_previous(demote_to):
    e = reg(reg(None, "v1"), "v2")
    e = pro(e, "v1", "production")
    e = pro(e, "v2", "production", demote_to=demote_to)
    assert e.from_version == "v1"
    assert e.stage_moves == {"v2": "production", "v1": demote_to}
    assert e.stages == {"v2": "production", "v1": demote_to}
    assert e.aliases["production"].version == "v2"
    assert "v1" not in e.digests  # v1 holds no alias any more


def test_production_demote_none_leaves_previous_stage():
    e = reg(reg(None, "v1"), "v2")
    e = pro(e, "v1", "production")
    e = pro(e, "v2", "production", demote_to="none")
    assert e.stage_moves == {"v2": "production"}
    assert e.stages["v1"] == "production"  # unchanged: `none` means no demotion


def test_repromote_same_version_to_production_is_a_no_op_move():
    e = pro(reg(None, "v1"), "v1", "production")
    e2 = pro(e, "v1", "production")
    assert e2.from_version == "v1" and e2.stage_moves == {"v1": "production"}
    assert e2.stages == {"v1": "production"}


def test_rollback_rule():
    e = reg(reg(None, "v1"), "v2")
    e = pro(e, "v1", "production")
    e = pro(e, "v2", "production")
    assert e.stages["v1"] == "archived"
    with pytest.raises(ConflictError, match="rollback"):
        pro(e, "v1", "production")
    r = pro(e, "v1", "production", rollback=True)
    assert r.rollback is True
    assert r.stages == {"v1": "production", "v2": "archived"}
    assert r.aliases["production"].version == "v1"


def test_archived_to_staging_needs_no_rollback():
    e = reg(None, "v1")
    e = pro(e, "v1", "archived")
    assert e.kind == "stage" and e.alias is None and e.stages == {"v1": "archived"}
    e = pro(e, "v1", "staging")
    assert e.stages == {"v1": "staging"} and e.aliases["staging"].version == "v1"


@pytest.mark.parametrize("target", ["development", "staging", "archived"])
def test_production_holder_cannot_change_stage(target):
    e = pro(reg(None, "v1"), "v1", "production")
    with pytest.raises(ConflictError, match="production"):
        pro(e, "v1", target)


def test_production_holder_may_take_other_aliases():
    e = pro(reg(None, "v1"), "v1", "production")
    e = pro(e, "v1", "candidate")
    assert e.kind == "promote" and e.stage_moves == {} and e.stages == {"v1": "production"}
    assert e.aliases["candidate"].version == "v1"


def test_former_holder_may_change_stage():
    e = reg(reg(None, "v1"), "v2")
    e = pro(pro(e, "v1", "production"), "v2", "production")
    e = pro(e, "v1", "development")
    assert e.kind == "stage" and "v1" not in e.stages and e.stage_moves == {"v1": "development"}


def test_stage_only_targets():
    e = reg(None, "v1")
    d = pro(e, "v1", "development")
    assert d.kind == "stage" and d.alias is None and d.stages == {} and d.aliases == e.aliases
    a = pro(e, "v1", "archived")
    assert a.stages == {"v1": "archived"} and "archived" not in a.aliases


def test_custom_alias_moves_no_stage():
    e = reg(reg(None, "v1"), "v2")
    e = pro(e, "v1", "candidate")
    e = pro(e, "v2", "candidate")
    assert e.from_version == "v1" and e.stage_moves == {} and e.stages == {}
    assert e.aliases["candidate"] == AliasState(version="v2", seq=4)


def test_digests_only_for_aliased_versions():
    e = reg(None, "v1")
    e = reg(e, "v2")
    e = reg(e, "v3")
    assert set(e.digests) == {"v3"}
    e = pro(e, "v1", "production")
    assert set(e.digests) == {"v1", "v3"}
    e = pro(e, "v2", "staging")
    assert set(e.digests) == {"v1", "v2", "v3"}
    e = pro(e, "v3", "staging")
    assert set(e.digests) == {"v1", "v3"}
    assert e.digests == {v: dg(v) for v in ("v1", "v3")}


# ---------------------------------------------------------------------- property test
TARGETS = ["production", "staging", "development", "archived", "latest", "candidate"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.booleans()),
        st.tuples(st.just("promote"), st.integers(0, 50), st.sampled_from(TARGETS), st.booleans(),
                  st.sampled_from(["archived", "staging", "none"])),
    ),
    min_size=1, max_size=40,
)


def _check(e: Event, history: dict[int, Event], registered: dict[str, str]) -> None:
    # every alias points to a registered version and was set by an earlier (or this) event
    for name, state in e.aliases.items():
        assert state.version in registered, (name, state)
        assert 1 <= state.seq <= e.seq
        setter = history[state.seq]
        assert setter.version == state.version
        assert setter.alias == name or (name == "latest" and setter.kind == "register")
    # stages: registered versions only, never 'development' (that is the default)
    assert set(e.stages) <= set(registered)
    assert set(e.stages.values()) <= {"staging", "production", "archived"}
    # the production holder is in production
    if "production" in e.aliases:
        assert e.stages.get(e.aliases["production"].version) == "production"
    # digests exactly for aliased versions, and the registered ones
    assert set(e.digests) == {s.version for s in e.aliases.values()}
    for v, d in e.digests.items():
        assert d == registered[v]
    # stage moves are reflected in stages
    for v, s in e.stage_moves.items():
        assert e.stages.get(v, "development") == s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_sequences_keep_the_invariants(sequence):
    last: Event | None = None
    history: dict[int, Event] = {}
    registered: dict[str, str] = {}
    for op in sequence:
        if op[0] == "register":
            version = f"v{len(registered) + 1}"
            e = reg(last, version, set_latest=op[1])
            registered[version] = dg(version)
        else:
            if not registered:
                continue
            _, i, to, rollback, demote_to = op
            version = sorted(registered)[i % len(registered)]
            before = copy.deepcopy(last.model_dump()) if last else None
            holder = last.aliases.get("production") if last else None
            stage = last.stages.get(version, "development") if last else "development"
            try:
                e = pro(last, version, to, rollback=rollback, demote_to=demote_to)
            except ConflictError:
                # refused only by the two rules, and without touching the state
                assert (last.model_dump() if last else None) == before
                holds = holder is not None and holder.version == version
                target_stage = to if to in ("development", "archived") else {"staging": "staging",
                                                                             "production": "production"}.get(to)
                assert (holds and target_stage not in (None, "production")) or (
                    target_stage == "production" and stage == "archived" and not rollback)
                continue
            else:
                holds = holder is not None and holder.version == version
                assert not (holds and to in ("development", "staging", "archived"))
                assert not (to == "production" and stage == "archived" and not rollback)
                if to == "production" and holder is not None and holder.version != version:
                    expected = demote_to if demote_to != "none" else last.stages.get(holder.version)
                    assert e.stages.get(holder.version) == expected, e.stages
        history[e.seq] = e
        _check(e, history, registered)
        last = e
