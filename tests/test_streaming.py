"""The one streaming-commit loop (app/streaming.py): batches, and nothing lost when a commit fails."""

from __future__ import annotations

import pytest

from app.streaming import Batches


def test_pieces_are_committed_in_batches_and_the_rest_is_left_for_the_final_write() -> None:
    commits: list[str] = []
    batches = Batches(commits.append, every_pieces=3, every_seconds=60)
    for piece in "abcdefgh":
        batches.add(piece)
    assert commits == ["abc", "def"]
    assert batches.text == "abcdefgh"
    assert batches.rest() == "gh" and batches.rest() == ""
    assert "".join(commits) + "gh" == batches.text


def test_a_slow_answer_is_committed_by_time() -> None:
    commits: list[str] = []
    batches = Batches(commits.append, every_pieces=1000, every_seconds=0.0)
    batches.add("one ")
    batches.add("two")
    assert commits == ["one ", "two"] and batches.rest() == ""


def test_a_failed_commit_keeps_its_pieces_for_the_next_write() -> None:
    commits: list[str] = []
    failing = [True]

    def commit(text: str) -> None:
        if failing[0]:
            raise OSError("disk full")
        commits.append(text)

    batches = Batches(commit, every_pieces=2, every_seconds=60)
    batches.add("a")
    with pytest.raises(OSError):
        batches.add("b")
    failing[0] = False
    batches.add("c")  # the next commit carries what the failed one held
    assert commits == ["abc"] and batches.rest() == "" and batches.text == "abc"
