"""The assistant turn with a fake model: storing, streaming commits, context, cancel, titles."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from app.assistant import COMMIT_EVERY_PIECES, Assistant
from app.config import Config
from app.errors import ModelError, UsageError
from models.base import ChatMessage, GenerationParams
from models.fake import FakeModel
from sync.store import Store, StoreEvent


def test_answer_is_streamed_and_stored(store: Store, fake_model: FakeModel, config: Config) -> None:
    fake_model.enqueue(["Hel", "lo", " there", "!"])
    pieces: list[str] = []
    answer = Assistant(store, fake_model, config).ask("hi", on_piece=pieces.append)
    assert pieces == ["Hel", "lo", " there", "!"]
    conv = store.conversation(answer.turn.conversation_id)
    assert [(m.role, m.text, m.status) for m in conv.messages] == [
        ("user", "hi", "done"), ("assistant", "Hello there!", "done"),
    ]
    assert conv.messages[1].model == "fake" and conv.messages[1].device == "DEVICE-A"
    assert conv.messages[1].parent_id == conv.messages[0].id


def test_streamed_answer_is_committed_every_few_pieces(store: Store, config: Config) -> None:
    model = FakeModel(answer_words=20)
    seen: list[StoreEvent] = []
    store.subscribe(seen.append)
    texts_during: list[str] = []
    assistant = Assistant(store, model, config)
    turn = assistant.start("count")

    def observe(_piece: str) -> None:
        texts_during.append(store.conversation(turn.conversation_id).messages[-1].text)

    assistant.answer(turn, assistant.params(), on_piece=observe)
    answer_events = [e for e in seen if e.message_ids == frozenset({turn.answer_id})]
    assert len(answer_events) >= 20 // COMMIT_EVERY_PIECES
    # the store held a growing prefix while generation was still running
    assert any(0 < len(t) < len("".join(f"w{i} " for i in range(20))) for t in texts_during)


def test_continue_sends_earlier_turns(store: Store, fake_model: FakeModel, config: Config) -> None:
    assistant = Assistant(store, fake_model, config)
    first = assistant.ask("my name is Ada")
    assistant.ask("what is my name?", conversation_id=first.turn.conversation_id)
    prompt = fake_model.prompts[-1]
    assert prompt[0] == {"role": "user", "content": "my name is Ada"}
    assert prompt[1]["role"] == "assistant"
    assert prompt[-1] == {"role": "user", "content": "what is my name?"}


def test_system_prompt_is_kept_per_conversation(store: Store, fake_model: FakeModel, config: Config) -> None:
    assistant = Assistant(store, fake_model, config)
    first = assistant.ask("hello", system_prompt="You are terse")
    assistant.ask("again", conversation_id=first.turn.conversation_id)
    assert fake_model.prompts[-1][0] == {"role": "system", "content": "You are terse"}
    assert store.summary(first.turn.conversation_id).system_prompt == "You are terse"


def test_empty_prompt_is_refused(store: Store, fake_model: FakeModel, config: Config) -> None:
    with pytest.raises(UsageError):
        Assistant(store, fake_model, config).ask("   ")
    assert store.list_conversations() == []


def test_cancel_keeps_partial_answer(store: Store, config: Config) -> None:
    model = FakeModel(answer_words=100)
    cancel = threading.Event()
    count = 0

    def on_piece(_piece: str) -> None:
        nonlocal count
        count += 1
        if count == 10:
            cancel.set()

    answer = Assistant(store, model, config).ask("go", on_piece=on_piece, cancel=cancel)
    assert answer.status == "cancelled"
    stored = store.conversation(answer.turn.conversation_id).messages[-1]
    assert stored.status == "cancelled"
    assert stored.text == "".join(f"w{i} " for i in range(10))


class ExplodingModel(FakeModel):
    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        yield "partial "
        raise ModelError("the model fell over")


def test_model_failure_marks_answer_failed_and_keeps_text(store: Store, config: Config) -> None:
    assistant = Assistant(store, ExplodingModel(), config)
    with pytest.raises(ModelError):
        assistant.ask("go")
    conv_id = store.latest_conversation_id()
    assert conv_id is not None
    last = store.conversation(conv_id).messages[-1]
    assert (last.status, last.text) == ("failed", "partial ")


def test_new_conversation_gets_an_auto_title(store: Store) -> None:
    model = FakeModel()
    model.enqueue(["Sure!"])
    model.enqueue(["Greeting ", "exchange"])
    answer = Assistant(store, model, Config(auto_title=True)).ask("hello")
    assert store.summary(answer.turn.conversation_id).title == "Greeting exchange"


def test_auto_title_does_not_override_a_user_title(store: Store) -> None:
    model = FakeModel()
    assistant = Assistant(store, model, Config(auto_title=True))
    turn = assistant.start("hello")
    store.set_title(turn.conversation_id, "Mine")
    model.enqueue(["answer"])
    model.enqueue(["Auto title"])
    assistant.answer(turn, assistant.params())
    assert store.summary(turn.conversation_id).title == "Mine"


def test_params_from_config_and_overrides(store: Store, fake_model: FakeModel) -> None:
    assistant = Assistant(store, fake_model, Config(max_tokens=99, temperature=0.3, seed=4))
    assert assistant.params() == GenerationParams(max_tokens=99, temperature=0.3, top_p=0.95, seed=4)
    assert assistant.params(max_tokens=5, seed=None).max_tokens == 5


def test_a_delegated_answer_is_one_commit_and_queued_from_the_start(
        store: Store, fake_model: FakeModel, config: Config) -> None:
    """What a peer first sees of a handed-over answer is the job, never a local 'streaming'."""
    from app.delegation import request_job
    from sync import jobs

    seen: list[StoreEvent] = []
    store.subscribe(seen.append)
    assistant = Assistant(store, fake_model, config)
    conv_id: str | None = None
    for _ in range(2):  # a new conversation, then the same one continued
        seen.clear()
        turn, attempt = request_job(assistant, "a question", conv_id, None, "DEVICE-B",
                                    GenerationParams(max_tokens=16))
        conv_id = turn.conversation_id
        assert len(seen) == 1 and seen[0].doc_id == conv_id  # one commit
        answer = store.conversation(conv_id).message(turn.answer_id)
        assert answer is not None and answer.status == "queued" and answer.model is None
        raw = store.read(conv_id, lambda doc: doc.get_deep_value())
        job = jobs.read_job(raw["messages"][-1])
        assert job is not None and job.current is not None and job.current.id == attempt
        assert job.current.assignee == "DEVICE-B" and job.requested_by == "DEVICE-A"
    assert conv_id is not None and len(store.conversation(conv_id).messages) == 4


def test_an_answer_asked_again_elsewhere_is_one_commit_beside_the_first(
        store: Store, fake_model: FakeModel, config: Config) -> None:
    """Regenerating on another device (the app's Ctrl+R with run_on set): the new answer is
    queued with its job in the commit that creates it, a sibling of the earlier answer."""
    from app.delegation import job_setup
    from sync import jobs

    assistant = Assistant(store, fake_model, config)
    first = assistant.ask("a question", params=GenerationParams(max_tokens=4))
    seen: list[StoreEvent] = []
    store.subscribe(seen.append)
    turn = assistant.again(first.turn.conversation_id, first.turn.prompt_id,
                           job=job_setup(store.device_id, "DEVICE-B", GenerationParams(max_tokens=8)))
    assert len(seen) == 1  # one commit
    conv = store.conversation(turn.conversation_id)
    answer = conv.message(turn.answer_id)
    assert answer is not None and answer.status == "queued" and answer.model is None
    assert answer.parent_id == first.turn.prompt_id != turn.answer_id
    assert [m.id for m in conv.children(first.turn.prompt_id)] == [first.turn.answer_id,
                                                                   turn.answer_id]
    raw = store.read(turn.conversation_id, lambda doc: doc.get_deep_value())
    job = jobs.read_job(next(m for m in raw["messages"] if m["id"] == turn.answer_id))
    assert job is not None and job.current is not None and job.current.assignee == "DEVICE-B"
    assert job.params["max_tokens"] == 8
    here = assistant.again(turn.conversation_id, first.turn.prompt_id)  # no job: streams here
    streaming = store.conversation(turn.conversation_id).message(here.answer_id)
    assert streaming is not None and streaming.status == "streaming"
