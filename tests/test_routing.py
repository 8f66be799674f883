"""Auto routing arithmetic: prefer local unless another device would finish clearly sooner."""

from __future__ import annotations

from app.routing import CLEARLY_FASTER, finish_seconds


def test_clearly_faster_peer_wins_and_a_busy_one_does_not() -> None:
    local = finish_seconds(20, 0, 100, 200, remote=False)
    fast_peer = finish_seconds(100, 0, 100, 200, remote=True)
    assert local >= CLEARLY_FASTER * fast_peer
    busy_peer = finish_seconds(100, 6, 100, 200, remote=True)
    assert local < CLEARLY_FASTER * busy_peer  # a queue of answers ahead cancels its speed


def test_slightly_faster_peer_loses_to_local() -> None:
    local = finish_seconds(20, 0, 100, 200, remote=False)
    peer = finish_seconds(25, 0, 100, 200, remote=True)
    assert local < CLEARLY_FASTER * peer


def test_longer_prompts_cost_more() -> None:
    assert finish_seconds(50, 0, 4000, 100, False) > finish_seconds(50, 0, 100, 100, False)
