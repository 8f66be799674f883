"""Models already on disk: Ollama, LM Studio, the Hugging Face cache, GPT4All and `model_dirs`
laid out as those programs lay them out (in a temporary HOME, holding the bundled GGUF), broken
ones beside them; `covey models`, `--model NAME`, and the node's warm models under a budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import Config, Paths
from app.context import Context
from app.warm_models import WarmModels, need_mb
from models.registry import bundled_model_path
from models.scan import MetadataCache, scan
from tests import model_layouts as layouts
from tests.conftest import run_covey

GOOD = {
    "SmolLM2-135M-Instruct.Q4_1": "bundled",
    "llama3.2:3b": "ollama",
    "me/custom:latest": "ollama",
    "lmstudio-community/SmolLM2-135M-Instruct-GGUF": "lmstudio",
    "bartowski/SmolLM2-135M-Instruct-GGUF": "huggingface",
    "smollm2-135m-instruct.Q4_1": "gpt4all",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME with every layout, good and broken, and a covey home inside it."""
    home = tmp_path_factory.mktemp("home")
    layouts.ollama(home)
    layouts.ollama(home, "custom", "latest", namespace="me")
    layouts.ollama_missing_blob(home)
    layouts.ollama_corrupt_manifest(home)
    layouts.lmstudio(home)
    layouts.huggingface(home)
    layouts.gpt4all(home)
    layouts.broken_files(home / "more-models")
    covey = home / "covey"
    covey.mkdir()
    (covey / "config.toml").write_text(
        f'device_name = "laptop"\nmdns = false\nauto_title = false\napi = false\n'
        f'model_dirs = ["{home / "more-models"}"]\n')
    return home


def covey(home: Path, *args: str) -> tuple[int, str, str]:
    out = run_covey(*args, home=home / "covey",
                    env={"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    return out.returncode, out.stdout, out.stderr


def test_every_layout_is_found_with_its_metadata_and_broken_files_with_reasons(home: Path) -> None:
    code, out, err = covey(home, "models", "--json", "--all")
    assert code == 0, err
    assert "reading SmolLM2-135M-Instruct.Q4_1.gguf" in err  # the first scan says what it reads
    found = {m["name"]: m for m in json.loads(out)}
    good = {n: m for n, m in found.items() if not m["unusable"]}
    assert {n: m["source"] for n, m in good.items()} == GOOD
    for m in good.values():
        assert (m["params"], m["quant"], m["context_length"], m["device_name"]) == \
            ("135M", "Q4_1", 8192, "laptop")
        assert m["size"] == bundled_model_path().stat().st_size
    reasons = {n: m["unusable"] for n, m in found.items() if m["unusable"]}
    assert "is missing" in reasons["ghost:latest"]  # a manifest whose blob is gone
    assert "not an Ollama manifest" in reasons["broken:latest"]
    assert "truncated or corrupt" in reasons["truncated"]
    assert "truncated or corrupt" in reasons["garbage"]
    assert "not a GGUF" in reasons["notes"]
    assert "embedding model" in reasons["embedder"]
    assert "vision projector" in reasons["mmproj"]
    assert "shard 2 of 2" in reasons["split-00002-of-00002"]
    assert "broken link" in reasons["gone"]
    assert "Traceback" not in err
    # The table: usable models only, and a line saying how many files cannot chat.
    code, table, err = covey(home, "models")
    assert code == 0 and "reading" not in err  # every file's metadata came from the cache
    lines = table.splitlines()
    assert lines[0].split() == ["DEVICE", "MODEL", "PARAMS", "QUANT", "SIZE", "CTX", "TOK/S",
                                "FROM"]
    assert any(line.split()[:2] == ["laptop", "llama3.2:3b"] for line in lines)
    assert "9 file(s) found that cannot chat" in table
    code, everything, _ = covey(home, "models", "--all")
    assert "Found, and cannot chat:" in everything and "ghost:latest (ollama)" in everything


def test_a_scan_reads_each_file_once_and_again_when_it_changes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    link = layouts.lmstudio(home)
    cache = MetadataCache(tmp_path / "cache.json")
    read: list[str] = []
    first = scan(cache, bundled_model_path(), [], home=home, env={}, progress=read.append)
    assert [m.name for m in first] == ["SmolLM2-135M-Instruct.Q4_1",
                                       "lmstudio-community/SmolLM2-135M-Instruct-GGUF"]
    assert len(read) == 1  # the bundled file and its hard link: one file, read once
    read.clear()
    scan(MetadataCache(tmp_path / "cache.json"), bundled_model_path(), [], home=home, env={},
         progress=read.append)
    assert read == []  # cached, across processes (a new cache object reads the file)
    link.unlink()
    link.write_bytes(b"GGUF" + b"\0" * 64)  # the file changed: read again, and now unusable
    again = scan(cache, bundled_model_path(), [], home=home, env={}, progress=read.append)
    assert len(read) == 1 and again[1].unusable


@pytest.mark.real_model
def test_ask_by_name_answers_with_the_model_from_each_layout(home: Path) -> None:
    prompt = ("--temperature", "0", "--seed", "1", "--max-tokens", "12",
              "Name a colour of the sea.")
    code, expected, err = covey(home, "ask", *prompt)
    assert code == 0 and expected.strip(), err
    for name in ("llama3.2:3b", "lmstudio-community/SmolLM2", "bartowski/",
                 "smollm2-135m-instruct.Q4_1", "me/custom"):
        code, out, err = covey(home, "ask", "--model", name, *prompt)
        assert code == 0, err
        assert out == expected  # the same file, greedy: the same words
    code, out, _ = covey(home, "history", "--json")
    models_used = set()
    for conv in json.loads(out):
        _, shown, _ = covey(home, "show", conv["id"], "--json")
        doc = json.loads(shown)
        models_used |= {m["model"] for m in doc["messages"] if m["role"] == "assistant"}
        if doc.get("model"):
            assert doc["model"] in GOOD  # the conversation keeps the model it was asked with
    assert models_used == {"SmolLM2-135M-Instruct.Q4_1", "llama3.2:3b",
                           "lmstudio-community/SmolLM2-135M-Instruct-GGUF",
                           "bartowski/SmolLM2-135M-Instruct-GGUF", "smollm2-135m-instruct.Q4_1",
                           "me/custom:latest"}


def test_names_that_mean_nothing_or_several_models_are_clear_errors(home: Path) -> None:
    code, _, err = covey(home, "ask", "--model", "no-such-model", "hi")
    assert code != 0 and "no device of the household has a model named 'no-such-model'" in err
    code, _, err = covey(home, "ask", "--model", "smollm2", "hi")  # two names start so
    assert code != 0 and "names several models" in err and "smollm2-135m-instruct.Q4_1" in err
    code, _, err = covey(home, "ask", "--model", str(home / "nowhere.gguf"), "hi")
    assert code != 0 and "model file not found" in err
    assert "Traceback" not in err


def test_warm_models_stay_under_the_budget_least_recently_used_out(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("one", "two", "three"):
        (models / f"{name}.gguf").hardlink_to(bundled_model_path())
    paths = Paths.at(tmp_path / "covey")
    paths.ensure()
    Config(model_dirs=[str(models)], mdns=False).save(paths.config_file)
    ctx = Context(paths=paths)
    each = need_mb(str(bundled_model_path()))
    warm = WarmModels(ctx, ctx.model, budget_mb=each * 3 + 10)  # its own and two more
    try:
        one = warm.get("one")
        assert warm.get("two") is not one and warm.loaded == [ctx.model.info.name, "one", "two"]
        assert warm.get("one") is one  # used again: now the most recent
        warm.get("three")  # no room for a fourth: "two", least recently used, goes
        assert warm.loaded == [ctx.model.info.name, "one", "three"]
        assert warm.used_mb() <= warm.budget_mb
        assert warm.get(None) is ctx.model
        small = WarmModels(ctx, ctx.model, budget_mb=each + each // 2)
        from app.errors import ModelError

        with pytest.raises(ModelError, match=r"needs about [\d,]+ MB loaded.*model_memory"):
            small.get("one")
    finally:
        ctx.close()


@pytest.mark.real_model
def test_a_model_only_another_device_has_is_answered_there(make_device, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shelf = tmp_path / "laptop-models"
    shelf.mkdir()
    (shelf / "big-one.gguf").hardlink_to(bundled_model_path())
    laptop = make_device("laptop", "", f'model_dirs = ["{shelf}"]\n')
    pi = make_device("pi", "fake:name=pi-model")
    from tests.devices import eventually, pair

    pair(laptop, pi)
    laptop.serve()
    laptop.settled(timeout=120)
    pi.serve(laptop)
    pi.settled()

    def listed(device) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
        out = device.covey("models", "--json")
        assert out.returncode == 0, out.stderr
        by_device: dict[str, set[str]] = {}
        for m in json.loads(out.stdout):
            by_device.setdefault(m["device_name"], set()).add(m["name"])
        return by_device

    # Each device shows both devices' models (the laptop's reached the pi by sync).
    eventually(lambda: "big-one" in listed(pi).get("laptop", set()), timeout=60)
    assert "SmolLM2-135M-Instruct.Q4_1" in listed(pi)["laptop"]
    eventually(lambda: "laptop" in listed(laptop) and "pi" in listed(laptop), timeout=30)
    asked = pi.covey("ask", "--model", "big-one", "--max-tokens", "12", "--temperature", "0",
                     "Name a colour of the sea.")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip()
    conv = pi.history()[0]
    store = pi.store()
    try:
        doc = store.conversation(conv["id"])
        answer = doc.messages[-1]
        assert answer.model == "big-one" and answer.device == laptop.device_id
        assert doc.model == "big-one"  # the conversation keeps its model …
    finally:
        store.close()
    again = pi.covey("ask", "--continue", "--max-tokens", "8", "And of the sky?")
    assert again.returncode == 0, again.stderr
    store = pi.store()
    try:  # … so a continued one is answered by it again, on the laptop
        answer = store.conversation(conv["id"]).messages[-1]
        assert answer.model == "big-one" and answer.device == laptop.device_id
    finally:
        store.close()
    laptop.stop()
    refused = pi.covey("ask", "--model", "big-one", "hi")
    assert refused.returncode != 0 and "not online now" in refused.stderr


@pytest.mark.real_model
def test_covey_ask_hands_its_answer_to_the_node_running_here(make_device) -> None:  # type: ignore[no-untyped-def]
    laptop = make_device("laptop", "")  # the bundled model
    prompt = ("--temperature", "0", "--seed", "1", "--max-tokens", "12", "Name a bird.")
    alone = laptop.covey("ask", *prompt)  # no node: this process loads the model
    assert alone.returncode == 0, alone.stderr
    laptop.serve()
    laptop.settled(timeout=120)
    handed = laptop.covey("--log-level", "info", "ask", *prompt)
    assert handed.returncode == 0, handed.stderr
    assert handed.stdout == alone.stdout  # the same model, greedy: the same answer
    assert "first piece" in handed.stderr
    assert "running job" in laptop.log.read_text()  # … and the node's worker generated it
    continued = laptop.covey("ask", "--continue", "--max-tokens", "8", "And another?")
    assert continued.returncode == 0 and continued.stdout.strip(), continued.stderr
    assert laptop.log.read_text().count("running job") == 2


@pytest.mark.real_model
def test_a_queued_answer_for_a_named_model_waits_for_a_device_that_has_it(make_device,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    from app import routing
    from tests.devices import eventually, pair

    shelf = tmp_path / "laptop-models"
    shelf.mkdir()
    (shelf / "big-one.gguf").hardlink_to(bundled_model_path())
    laptop = make_device("laptop", "", f'model_dirs = ["{shelf}"]\n')
    pi = make_device("pi", "fake:name=pi-model", 'when_alone = "queue"\n')
    desk = make_device("desk", "fake:name=desk-model")  # online, fast, and without big-one
    pair(laptop, pi)
    pair(laptop, desk)
    laptop.serve()
    laptop.settled(timeout=120)
    desk.serve(laptop)
    desk.settled()
    pi.serve(laptop, desk)
    pi.settled()
    eventually(lambda: "big-one" in pi.covey("models").stdout, timeout=60)
    laptop.stop()

    def online(device) -> set[str]:  # type: ignore[no-untyped-def]
        store = device.store()
        try:
            return routing.online_devices(store)
        finally:
            store.close()

    eventually(lambda: laptop.device_id not in online(pi) and desk.device_id in online(pi),
               timeout=30)
    asked = pi.covey("ask", "--model", "big-one", "--max-tokens", "8", "Name a bird.")
    assert asked.returncode == 0 and "queued" in asked.stderr, asked.stderr
    conv = pi.history()[0]["id"]

    def answer():  # type: ignore[no-untyped-def]
        store = pi.store()
        try:
            return store.conversation(conv).messages[-1]
        finally:
            store.close()

    import time

    time.sleep(3)  # the desk is online all along: it must not be given the job
    assert answer().status == "queued"
    laptop.serve(desk, pi)
    done = eventually(lambda: answer() if answer().status == "done" else None, timeout=90)
    assert done.device == laptop.device_id and done.model == "big-one" and done.text.strip()
