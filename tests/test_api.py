"""The OpenAI-compatible API, driven by clients covey did not write: the `openai` SDK, curl,
simonw/llm's CLI — against real `covey serve` processes (fake models: the API's logic, not the
model's quality; the bundled model's turn is in test_real_model)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from app.api import wire
from tests.devices import Device, eventually, pair

openai = pytest.importorskip("openai")
BUNDLED = "SmolLM2-135M-Instruct.Q4_1"  # (found on every device: the bundled file)


def client(device: Device, key: str = "unused-on-localhost", **kwargs: object):  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=device.api_url, api_key=key, max_retries=0, **kwargs)


def api_up(device: Device, model: bool = True) -> None:
    eventually(lambda: "covey API on" in device.log.read_text(errors="replace"), timeout=30)
    if model:
        device.settled()


def conversations(device: Device) -> list[dict]:  # type: ignore[type-arg]
    return device.history()


@pytest.fixture
def laptop(make_device):  # type: ignore[no-untyped-def]
    device = make_device("laptop", "fake:name=laptop-model,delay=0.05", api=True)
    device.serve()
    api_up(device)
    return device


def test_models_and_a_whole_answer_through_the_openai_sdk(laptop: Device) -> None:
    api = client(laptop)
    models = api.models.list()
    # Its node's own model, and the other models found on it (here: the bundled file).
    assert [m.id for m in models.data] == ["laptop-model", BUNDLED]
    assert {m.owned_by for m in models.data} == {"laptop"}
    reply = api.chat.completions.create(
        model="laptop-model", messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "You said: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == "laptop-model" and reply.id.startswith("chatcmpl-")
    stopped = api.chat.completions.create(
        model="laptop-model", messages=[{"role": "user", "content": "one two three four"}],
        stop=[" three"], max_tokens=50, temperature=0, seed=3)
    assert stopped.choices[0].message.content == "You said: one two"
    short = api.chat.completions.create(
        model="laptop-model", messages=[{"role": "user", "content": "one two three four"}],
        max_completion_tokens=2)
    assert short.choices[0].message.content == "You said:"
    assert short.choices[0].finish_reason == "length"
    # Recorded: a covey conversation, with the system prompt, marked with the client's name.
    conv = conversations(laptop)[-1]
    show = laptop.covey("show", conv["id"]).stdout
    assert "hello there" in show and "You said: hello there" in show
    assert "via the API, from localhost" in show
    store = laptop.store()
    try:
        full = store.conversation(conv["id"])
        assert full.client == "localhost" and full.system_prompt == "Be brief."
    finally:
        store.close()


def test_streaming_and_usage_and_a_conversation_continued(laptop: Device) -> None:
    api = client(laptop)
    stream = api.chat.completions.create(
        model="laptop", messages=[{"role": "user", "content": "one two three"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3  # streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    # The client repeats the turns and adds one: the same covey conversation goes on.
    again = api.chat.completions.create(model="laptop-model", messages=[
        {"role": "user", "content": "one two three"}, {"role": "assistant", "content": text},
        {"role": "user", "content": [{"type": "text", "text": "four"}]}])
    assert again.choices[0].message.content == "You said: four"
    [conv] = conversations(laptop)
    store = laptop.store()
    try:
        thread = store.conversation(conv["id"]).thread()
    finally:
        store.close()
    assert [(m.role, m.text) for m in thread] == [
        ("user", "one two three"), ("assistant", text), ("user", "four"),
        ("assistant", "You said: four")]
    # A client that sends a history covey never saw starts a conversation with those turns.
    api.chat.completions.create(model="laptop-model", messages=[
        {"role": "user", "content": "from elsewhere"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "go on"}])
    assert len(conversations(laptop)) == 2


def test_curl_sees_server_sent_events_ending_with_done(laptop: Device) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    body = json.dumps({"model": "laptop-model", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]})
    out = subprocess.run(["curl", "-sN", f"{laptop.api_url}/chat/completions", "-H",
                          "Content-Type: application/json", "-d", body],
                         capture_output=True, text=True, timeout=60)
    events = [line[6:] for line in out.stdout.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "You said: hi"


def test_errors_are_openai_shaped_and_nothing_runs(laptop: Device) -> None:
    api = client(laptop)
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"
    assert "laptop-model" in missing.value.body["message"]  # it says what there is
    with pytest.raises(openai.BadRequestError) as malformed:
        api.chat.completions.create(model="laptop-model", messages=[])
    assert malformed.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="laptop-model",
                                    messages=[{"role": "user", "content": "x"}], temperature=9)
    raw = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"{laptop.api_url}/chat/completions",
                          "-d", "{not json"], capture_output=True, text=True, timeout=30)
    body, code = raw.stdout.rsplit("\n", 1)
    assert code == "400" and json.loads(body)["error"]["type"] == "invalid_request_error"
    big = "x" * (9 * 1024 * 1024)
    raw = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "--data-binary", "@-",
                          f"{laptop.api_url}/chat/completions"], input=big,
                         capture_output=True, text=True, timeout=60)
    body, code = raw.stdout.rsplit("\n", 1)
    assert code == "413" and "Traceback" not in body and json.loads(body)["error"]
    assert conversations(laptop) == []  # nothing was recorded, nothing ran


def test_a_client_that_goes_away_cancels_its_answer(make_device) -> None:  # type: ignore[no-untyped-def]
    slow = make_device("slow", "fake:name=slow-model,delay=0.2,words=200", api=True)
    slow.serve()
    api_up(slow)
    stream = client(slow, timeout=60).chat.completions.create(
        model="slow-model", messages=[{"role": "user", "content": "talk"}], stream=True)
    got = 0
    for chunk_ in stream:
        got += bool(chunk_.choices and chunk_.choices[0].delta.content)
        if got >= 3:
            break
    stream.close()  # the client hangs up
    conv = eventually(lambda: conversations(slow))[0]
    store = slow.store()
    try:
        def ended() -> str | None:
            store.poll()
            answer = store.conversation(conv["id"]).messages[-1]
            return answer.status if answer.status != "streaming" else None
        assert eventually(ended, timeout=20) == "cancelled"
        assert len(store.conversation(conv["id"]).messages[-1].text.split()) < 100
    finally:
        store.close()


def test_requests_wait_their_turn_and_none_interrupts_another(make_device) -> None:  # type: ignore[no-untyped-def]
    dev = make_device("one", "fake:name=one-model,delay=0.02,words=40", api=True)
    dev.serve()
    api_up(dev)
    results: list[str] = []
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            reply = client(dev, timeout=120).chat.completions.create(
                model="one-model", messages=[{"role": "user", "content": f"request {n}"}])
            results.append(reply.choices[0].message.content or "")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(results) == 4
    whole = " ".join(f"w{i}" for i in range(40))
    assert all(r.split() == whole.split() for r in results)  # each complete, none cut short
    statuses = [m.status for c in conversations(dev)
                for m in [dev.store().conversation(c["id"]).messages[-1]]]
    assert statuses == ["done"] * 4


def test_the_household_model_runs_on_the_device_that_has_it(make_device) -> None:  # type: ignore[no-untyped-def]
    laptop = make_device("laptop", "fake:name=llama-big", api=False)
    pi = make_device("pi", "fake", api=True)
    pair(laptop, pi)
    laptop.serve()
    laptop.settled()
    pi.serve(laptop, extra=("--no-model",))
    api_up(pi, model=False)
    api = client(pi)
    eventually(lambda: [m.id for m in api.models.list().data] == ["llama-big", BUNDLED],
               timeout=30)
    reply = api.chat.completions.create(model="llama", messages=[
        {"role": "user", "content": "who answers?"}])
    assert reply.choices[0].message.content == "You said: who answers?"
    assert reply.model == "llama-big"
    conv = eventually(laptop.history)[0]  # recorded, and synced to the runner
    assert [c["id"] for c in pi.history()] == [conv["id"]]  # and on the asking device
    store = laptop.store()
    try:
        answer = store.conversation(conv["id"]).messages[-1]
        # ran on the laptop, asked for by the pi
        assert answer.device == laptop.device_id and answer.requested_by == pi.device_id
        assert answer.model == "llama-big"
    finally:
        store.close()
    laptop.stop()
    with pytest.raises(openai.APIStatusError) as gone:  # the only device with it is offline
        eventually(lambda: api.chat.completions.create(
            model="llama-big", messages=[{"role": "user", "content": "now?"}]) and False,
            timeout=30)
    assert gone.value.status_code == 503


def test_llm_cli_talks_to_covey(laptop: Device, tmp_path: Path) -> None:
    llm = shutil.which("llm") or str(Path(__import__("sys").executable).parent / "llm")
    if not Path(llm).exists():
        pytest.skip("simonw/llm is not installed")
    user_dir = tmp_path / "llm"
    user_dir.mkdir()
    (user_dir / "extra-openai-models.yaml").write_text(
        f"- model_id: covey-laptop\n  model_name: laptop-model\n  api_base: \"{laptop.api_url}\"\n")
    env = {**__import__("os").environ, "LLM_USER_PATH": str(user_dir),
           "OPENAI_API_KEY": "unused-on-localhost"}
    out = subprocess.run([llm, "-m", "covey-laptop", "a question from llm"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "You said: a question from llm"
    assert "user: a [question] from llm" in laptop.covey("search", "question").stdout


def test_the_wire_format_refuses_what_openai_refuses() -> None:
    def refused(body: object) -> str:
        with pytest.raises(wire.ApiError) as err:
            wire.parse_chat(json.dumps(body).encode())
        assert err.value.status == 400
        return err.value.message

    ok = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert wire.parse_chat(json.dumps(ok).encode()).dialogue[-1].content == "hi"
    assert "model" in refused({"messages": ok["messages"]})
    assert "last message" in refused({**ok, "messages": [{"role": "assistant", "content": "x"}]})
    assert "tools" in refused({**ok, "messages": [{"role": "tool", "content": "x"}]})
    assert "image_url" in refused({**ok, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]}]})
    assert "'n'" in refused({**ok, "n": 2})
    assert "max_tokens" in refused({**ok, "max_tokens": 0})
    assert "stop" in refused({**ok, "stop": ["a", "b", "c", "d", "e"]})
    parsed = wire.parse_chat(json.dumps({**ok, "max_completion_tokens": 7, "stop": "END",
                                         "messages": [{"role": "developer", "content": "S"},
                                                      *ok["messages"]]}).encode())
    assert parsed.max_tokens == 7 and parsed.stop == ("END",) and parsed.system == "S"



def test_auto_routes_and_api_record_false_writes_nothing(make_device) -> None:  # type: ignore[no-untyped-def]
    dev = make_device("solo", "fake:name=solo-model", api=True, extra_config="api_record = false\n")
    dev.serve()
    api_up(dev)
    reply = client(dev).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "off the record"}])
    assert reply.choices[0].message.content == "You said: off the record"
    stream = client(dev).chat.completions.create(
        model="solo-model", stream=True, messages=[{"role": "user", "content": "also off"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
        "You said: also off"
    assert dev.history() == []


@pytest.mark.real_model
def test_a_model_found_on_disk_is_loaded_for_the_request_that_names_it(make_device,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    from models.registry import bundled_model_path

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "extra.gguf").hardlink_to(bundled_model_path())
    dev = make_device("laptop", "fake:name=laptop-model", f'model_dirs = ["{shelf}"]\n',
                      api=True)
    dev.serve()
    api_up(dev)
    api = client(dev, timeout=120)
    assert "extra" in [m.id for m in api.models.list().data]
    reply = api.chat.completions.create(model="extra", max_tokens=12, temperature=0,
                                        messages=[{"role": "user", "content": "Name a bird."}])
    text = reply.choices[0].message.content or ""
    assert text.strip() and not text.startswith("You said")  # the real model, not the fake
    assert reply.model == "extra"
    store = dev.store()
    try:
        conv = store.list_conversations()[0]
        assert store.conversation(conv.id).messages[-1].model == "extra"
    finally:
        store.close()
    assert "loaded extra" in dev.log.read_text()  # the node's warm models took it in
