"""Segment planning of Engine::forward (cpp/engine/forward_plan.h), without a model.

A forward call runs each row through its own layer range [enter, exit). The
plan says which rows are active in which layers (segments), where states
leave (exits: the rows whose range ends there) and which exit columns the
heads (logits, exit check) read. _core.testing.plan_forward(rows, n_layer, ...) returns
it as a dict; a row is (token, pos, enter, exit, logits, check).
"""

from __future__ import annotations

import random

import pytest

from specbound_cpp import _core

L = 8


def row(enter, exit_, pos=0, token=1, logits=False, check=False):
    return [token, pos, enter, exit_, int(logits), int(check)]


def plan(rows, n_layer=L, **limits):
    return _core.testing.plan_forward(rows, n_layer, **limits)


def test_full_depth_batch_is_one_segment():
    p = plan([row(0, L, pos=i, logits=True) for i in range(3)])
    assert p["segments"] == [{"begin": 0, "end": L, "joining": [0, 1, 2], "rows": [0, 1, 2]}]
    assert p["exits"] == [{"layer": L, "rows": [0, 1, 2], "columns": [0, 1, 2], "kept": [], "whole": True}]
    assert p["logits_columns"] == [0, 1, 2] and p["logits_whole"]
    assert p["check_columns"] == [] and not p["check_whole"]
    assert not p["reads_hidden"]


def test_deep_pass_rows_enter_at_their_depths():
    # the newest token at depth 3, a draft at depth 3, an n-gram draft at 0
    rows = [row(3, L, pos=10, logits=True), row(3, L, pos=11, logits=True), row(0, L, pos=12, logits=True)]
    p = plan(rows)
    assert p["segments"] == [
        {"begin": 0, "end": 3, "joining": [2], "rows": [2]},
        {"begin": 3, "end": L, "joining": [0, 1], "rows": [2, 0, 1]},  # joiners after the running rows
    ]
    assert p["exits"] == [{"layer": L, "rows": [2, 0, 1], "columns": [0, 1, 2], "kept": [], "whole": True}]
    # logits in request order: columns of rows 0, 1, 2 in the exit state [2, 0, 1]
    assert p["logits_columns"] == [1, 2, 0] and not p["logits_whole"]
    assert p["reads_hidden"]


def test_rows_leave_at_their_exit():
    # drafting: the earlier token advances to 4, the checked one exits at 2
    rows = [row(0, 4, pos=0), row(0, 2, pos=1, check=True), row(0, L, pos=2, logits=True)]
    p = plan(rows)
    assert [(s["begin"], s["end"], s["rows"]) for s in p["segments"]] == [(0, 2, [0, 1, 2]), (2, 4, [0, 2]), (4, L, [2])]
    assert p["exits"] == [
        {"layer": 2, "rows": [1], "columns": [1], "kept": [0, 2], "whole": False},
        {"layer": 4, "rows": [0], "columns": [0], "kept": [1], "whole": False},
        {"layer": L, "rows": [2], "columns": [0], "kept": [], "whole": True},
    ]
    # exit columns side by side: row 1 -> 0, row 0 -> 1, row 2 -> 2
    assert p["check_columns"] == [0] and not p["check_whole"]
    assert p["logits_columns"] == [2] and not p["logits_whole"]


def test_all_leave_and_others_join_at_one_layer():
    p = plan([row(0, 3, pos=0), row(3, L, pos=1, logits=True)])
    assert p["exits"][0] == {"layer": 3, "rows": [0], "columns": [0], "kept": [], "whole": True}
    assert p["segments"] == [
        {"begin": 0, "end": 3, "joining": [0], "rows": [0]},
        {"begin": 3, "end": L, "joining": [1], "rows": [1]},
    ]
    assert p["logits_columns"] == [1]


def test_single_check_row_reads_its_state_whole():
    p = plan([row(2, 5, pos=4, check=True)])
    assert p["segments"] == [{"begin": 2, "end": 5, "joining": [0], "rows": [0]}]
    assert p["check_columns"] == [0] and p["check_whole"]


def test_rows_computing_no_layer_are_left_out():
    p = plan([row(4, 4, pos=0), row(0, 2, pos=1), row(7, 7, pos=2)])
    assert p["segments"] == [{"begin": 0, "end": 2, "joining": [1], "rows": [1]}]
    assert [e["rows"] for e in p["exits"]] == [[1]]
    assert plan([row(3, 3)])["segments"] == []
    assert plan([]) == plan([row(0, 0)])


def test_token_ids_are_checked_only_where_embedded():
    plan([row(2, L, token=10**6)])  # enters past 0: the token is not embedded
    with pytest.raises(ValueError):
        plan([row(0, L, token=10**6)])
    with pytest.raises(ValueError):
        plan([row(0, L, token=-1)])


@pytest.mark.parametrize("bad", [
    row(3, 2),            # enter after exit
    row(-1, 2),           # enter below 0
    row(0, L + 1),        # exit past the top
    row(0, 4, logits=True),  # logits need the full depth
    row(L, L, logits=True),  # a head needs a layer's state
    row(2, 2, check=True),
])
def test_invalid_rows_raise(bad):
    with pytest.raises(ValueError):
        plan([row(0, L, pos=1), bad])


@pytest.mark.parametrize("pos", [-1, 2048])
def test_position_outside_context_raises(pos):
    with pytest.raises(IndexError):
        plan([row(0, L, pos=pos)], n_ctx=2048)


def test_limits_of_the_call():
    with pytest.raises(ValueError):
        plan([row(0, 2, check=True)], has_candidates=False)
    with pytest.raises(ValueError):
        plan([row(1, 2)], has_hidden_in=False)
    with pytest.raises(ValueError):
        plan([[1, 0, 0, L, 0]])  # a row is six numbers


def test_a_layer_without_rows_raises():
    with pytest.raises(ValueError, match="layer 2"):
        plan([row(0, 2, pos=0), row(4, L, pos=1)])


def check_plan_consistent(rows, p):
    """The plan against its rows: each layer runs exactly the rows whose range
    holds it, columns follow exits and joins, heads read the right states."""
    computing = [r for r, (_, _, e, x, _, _) in enumerate(rows) if e < x]
    state: list[int] = []  # request rows, in column order of the running state
    exit_cols: list[int] = []
    exits = iter(p["exits"])
    pending = next(exits, None)
    for seg in p["segments"]:
        if pending is not None and pending["layer"] == seg["begin"]:
            assert pending["rows"] == [state[c] for c in pending["columns"]]
            assert all(rows[r][3] == seg["begin"] for r in pending["rows"])
            exit_cols += pending["rows"]
            state = [] if pending["whole"] else [state[c] for c in pending["kept"]]
            pending = next(exits, None)
        state = state + seg["joining"]
        assert state == seg["rows"]
        for layer in range(seg["begin"], seg["end"]):
            assert sorted(seg["rows"]) == [r for r in computing if rows[r][2] <= layer < rows[r][3]]
    assert pending is not None and pending["whole"] and pending["rows"] == state
    assert next(exits, None) is None
    exit_cols += state
    assert sorted(exit_cols) == computing  # every computing row leaves once
    for flag, key in ((4, "logits"), (5, "check")):
        wanted = [r for r in range(len(rows)) if rows[r][flag]]
        assert [exit_cols[c] for c in p[key + "_columns"]] == wanted
        assert p[key + "_whole"] == (bool(wanted) and wanted == exit_cols)


def test_random_batches_are_planned_consistently():
    rng = random.Random(11)
    for _ in range(300):
        rows = [row(0, rng.randint(1, L), pos=0)]  # layer 0 upwards has a row
        for i in range(rng.randint(0, 7)):
            enter = rng.randint(0, L)
            exit_ = rng.randint(enter, L)
            rows.append(row(enter, exit_, pos=i + 1))
        # no layer between the lowest and the highest without a row
        covered = {layer for (_, _, e, x, _, _) in rows for layer in range(e, x)}
        if covered != set(range(max(covered) + 1)):
            with pytest.raises(ValueError):
                plan(rows)
            continue
        for r in rows:
            if r[2] < r[3]:
                r[4] = int(r[3] == L and rng.random() < 0.5)
                r[5] = int(rng.random() < 0.3)
        check_plan_consistent(rows, plan(rows))
