"""End to end with the real bundled SmolLM2 model, real SQLite, the real CLI in a subprocess."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from models.base import GenerationParams
from models.llama import LlamaCppModel
from models.registry import bundled_model_path
from tests.conftest import assert_clean_error, run_covey

pytestmark = pytest.mark.real_model
SHORT = ("--max-tokens", "32", "--temperature", "0", "--seed", "1")


@pytest.fixture(scope="module")
def real_model() -> LlamaCppModel:
    return LlamaCppModel(bundled_model_path(), context_length=2048)


def test_bundled_model_is_found_in_the_package() -> None:
    path = bundled_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "site-packages" in str(path)


def test_model_streams_and_counts(real_model: LlamaCppModel) -> None:
    messages = [{"role": "user", "content": "Name a colour."}]
    pieces = list(real_model.stream(messages, GenerationParams(max_tokens=16, temperature=0, seed=1)))
    assert len(pieces) > 1 and "".join(pieces).strip()
    count = real_model.count_tokens(messages)
    assert 5 < count < 60  # template + a few words
    longer = real_model.count_tokens(messages + [{"role": "assistant", "content": "Blue " * 50}])
    assert longer > count + 40
    assert real_model.info.context_length == 2048


def test_generation_can_be_cancelled(real_model: LlamaCppModel) -> None:
    import threading

    cancel = threading.Event()
    got = []
    for piece in real_model.stream([{"role": "user", "content": "Tell a long story."}],
                                   GenerationParams(max_tokens=200, temperature=0), cancel):
        got.append(piece)
        if len(got) == 5:
            cancel.set()
    assert len(got) == 5


def test_ask_streams_stores_and_continues_with_context(covey_home: Path) -> None:
    first = run_covey("ask", *SHORT, "What is the capital of France?", home=covey_home)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip()
    rows = json.loads(run_covey("history", "--json", home=covey_home).stdout)
    assert len(rows) == 1 and rows[0]["message_count"] == 2
    assert rows[0]["title"] not in ("", "New conversation")  # auto-titled by the model
    shown = json.loads(run_covey("show", rows[0]["id"], "--json", home=covey_home).stdout)
    answer = shown["messages"][1]
    assert answer["text"].strip() == first.stdout.strip()
    assert answer["model"].startswith("SmolLM2") and answer["status"] == "done"

    second = run_covey("--log-level", "debug", "ask", *SHORT, "--continue", "Say it shorter",
                       home=covey_home)
    assert second.returncode == 0, second.stderr
    # the prompt sent to the model carries the earlier turns
    prompt_line = next(ln for ln in second.stderr.splitlines() if "prompt to" in ln)
    assert "What is the capital of France?" in prompt_line
    assert answer["text"].strip()[:20] in prompt_line
    assert "Say it shorter" in prompt_line
    rows = json.loads(run_covey("history", "--json", home=covey_home).stdout)
    assert len(rows) == 1 and rows[0]["message_count"] == 4


def test_history_show_search_export_import_rm_title(covey_home: Path, tmp_path: Path) -> None:
    for question in ("Tell me about the moon.", "Tell me about volcanoes."):
        assert run_covey("ask", *SHORT, question, home=covey_home).returncode == 0
    hits = json.loads(run_covey("search", "volcanoes", "--json", home=covey_home).stdout)
    assert hits and all("volcano" in h["snippet"].lower() for h in hits)
    conv = hits[0]["conversation_id"]
    dump = tmp_path / "dump.json"
    assert run_covey("export", "--format", "json", "-o", str(dump), home=covey_home).returncode == 0
    other = tmp_path / "other"
    assert run_covey("import", str(dump), home=other).returncode == 0
    mine = json.loads(run_covey("export", "--format", "json", home=covey_home).stdout)
    theirs = json.loads(run_covey("export", "--format", "json", home=other).stdout)
    assert mine["conversations"] == theirs["conversations"]
    assert run_covey("title", conv, "Fire mountains", home=covey_home).returncode == 0
    shown = json.loads(run_covey("show", conv, "--json", home=covey_home).stdout)
    assert shown["title"] == "Fire mountains"
    assert run_covey("rm", conv, home=covey_home).returncode == 0
    assert json.loads(run_covey("search", "volcanoes", "--json", home=covey_home).stdout) == []
    assert len(json.loads(run_covey("history", "--json", home=covey_home).stdout)) == 1


def test_prompt_far_longer_than_the_context_gets_a_trimmed_answer(covey_home: Path) -> None:
    (covey_home).mkdir(parents=True, exist_ok=True)
    (covey_home / "config.toml").write_text("context_length = 512\n")
    text = ("The quick brown fox jumps over the lazy dog. " * 2000).encode()
    result = run_covey("ask", "--max-tokens", "24", "--temperature", "0", "Summarize this:",
                       input=text, home=covey_home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_gguf_header_without_a_model_is_a_clear_error(covey_home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "header-only.gguf"
    fake.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + b"\x00" * 64)
    assert_clean_error(run_covey("ask", "--model", str(fake), "hi", home=covey_home),
                       "cannot load model")


def test_bench_model_json(covey_home: Path) -> None:
    result = run_covey("bench", "model", "--json", "--max-tokens", "16", "--rounds", "1",
                       home=covey_home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("covey_tok_s", "raw_tok_s", "ratio", "covey_ttft_ms", "raw_ttft_ms"):
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert report["completion_tokens"] > 0


def test_doctor_with_the_real_model(covey_home: Path) -> None:
    result = run_covey("doctor", home=covey_home)
    assert result.returncode == 0, result.stdout
    assert "SmolLM2" in result.stdout and "[ok  ] model" in result.stdout


def test_the_api_answers_with_the_bundled_model_as_covey_ask_does(make_device) -> None:  # type: ignore[no-untyped-def]
    """The openai SDK against `covey serve` on the bundled model: the same greedy answer as
    `covey ask` gives for the same prompt and settings."""
    openai = pytest.importorskip("openai")
    from tests.devices import eventually

    device = make_device("real", "", api=True)
    device.serve()
    eventually(lambda: "covey API on" in device.log.read_text(errors="replace"), timeout=60)
    device.settled(timeout=120)
    api = openai.OpenAI(base_url=device.api_url, api_key="unused-on-localhost", max_retries=0)
    [model] = api.models.list().data
    assert "smollm2" in model.id.lower() and model.owned_by == "real"
    stream = api.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": "Name a colour."}], stream=True,
        max_tokens=32, temperature=0, seed=1)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    via_api = "".join(pieces)
    assert via_api.strip() and len([p for p in pieces if p]) > 3
    asked = device.covey("ask", *SHORT, "Name a colour.")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == via_api.strip()
