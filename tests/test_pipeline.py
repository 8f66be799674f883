"""Pipeline stages: input parsing, prompt building and trimming, titles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import ContextOverflowError
from app.pipeline import (
    TRIM_MARKER,
    SlashCommand,
    build_prompt,
    make_title,
    parse_input,
    sanitize_title,
)
from models.base import GenerationParams
from models.fake import FakeModel
from sync.conversation import Message


def msg(i: int, role: str, text: str) -> Message:
    return Message(id=f"m{i}", role=role, text=text, created_at=f"t{i}")


def test_parse_input() -> None:
    assert parse_input("/new") == SlashCommand("new", "")
    assert parse_input("  /system Be terse  ") == SlashCommand("system", "Be terse")
    assert parse_input("//etc/hosts is a file") == "/etc/hosts is a file"
    assert parse_input("hello /there") == "hello /there"
    assert parse_input("/") == "/"


def test_prompt_keeps_history_in_order_with_system_first() -> None:
    thread = [msg(0, "user", "hi"), msg(1, "assistant", "hello"), msg(2, "user", "more")]
    out = build_prompt(thread, "be kind", FakeModel(), GenerationParams(max_tokens=10))
    assert out == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    ]


def test_oldest_turns_are_dropped_first_and_system_kept() -> None:
    model = FakeModel(context_length=300)
    thread = []
    for i in range(20):
        thread += [msg(2 * i, "user", f"q{i} " + "word " * 10), msg(2 * i + 1, "assistant", "a " * 10)]
    thread.append(msg(99, "user", "final question"))
    params = GenerationParams(max_tokens=100)
    out = build_prompt(thread, "system words", model, params)
    assert out[0] == {"role": "system", "content": "system words"}
    assert out[-1] == {"role": "user", "content": "final question"}
    assert out[1]["role"] == "user"  # never starts with an orphaned answer
    assert model.count_tokens(out) <= 300 - 100
    assert len(out) < len(thread)
    kept = [m["content"] for m in out[1:]]
    assert kept == [m.text for m in thread[-len(kept):]]  # a suffix: newest turns kept


def test_single_huge_prompt_is_cut_in_the_middle() -> None:
    model = FakeModel(context_length=512)
    text = "BEGIN " + "filler " * 5000 + "END"
    out = build_prompt([msg(0, "user", text)], None, model, GenerationParams(max_tokens=64))
    content = out[-1]["content"]
    assert content.startswith("BEGIN") and content.endswith("END") and TRIM_MARKER in content
    assert model.count_tokens(out) <= 512 - 64


def test_max_tokens_leaving_no_room_is_an_error() -> None:
    with pytest.raises(ContextOverflowError, match="max-tokens"):
        build_prompt([msg(0, "user", "x")], None, FakeModel(context_length=512), GenerationParams(max_tokens=500))


def test_oversized_system_prompt_is_an_error() -> None:
    with pytest.raises(ContextOverflowError, match="system prompt"):
        build_prompt([msg(0, "user", "x")], "w " * 1000, FakeModel(context_length=512), GenerationParams(max_tokens=64))


@settings(max_examples=200, deadline=None)
@given(
    turns=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=30),
    ctx=st.integers(min_value=128, max_value=1024),
    max_tokens=st.integers(min_value=1, max_value=64),
)
def test_trimmed_prompt_always_fits(turns: list[str], ctx: int, max_tokens: int) -> None:
    model = FakeModel(context_length=ctx)
    thread = [msg(i, "user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)]
    if thread[-1].role != "user":
        thread.append(msg(999, "user", "last"))
    params = GenerationParams(max_tokens=max_tokens)
    out = build_prompt(thread, None, model, params)
    assert model.count_tokens(out) <= ctx - max_tokens
    if thread[-1].text.strip():
        assert out[-1]["role"] == "user"


def test_title_from_model_is_cleaned() -> None:
    model = FakeModel()
    model.enqueue(['"Title: ', "Llamas of ", "the Andes.", '"\nmore'])
    assert make_title(model, "tell me about llamas", "...") == "Llamas of the Andes"


def test_title_falls_back_to_the_prompt() -> None:
    model = FakeModel()
    model.enqueue([" "])
    assert make_title(model, "how do  rockets\nwork in space today please", "") == "how do rockets work in space today please"


@given(st.text(max_size=300), st.text(max_size=100))
def test_titles_are_always_one_short_line(raw: str, fallback: str) -> None:
    title = sanitize_title(raw, fallback)
    assert "\n" not in title and 0 < len(title) <= 61
