"""`covey bench import`: importing a big history, seconds and peak memory, every importer in
the same run on the same data.

A ChatGPT-format export is generated (10,000 conversations / 200,000 messages by default, with
hidden system messages, regenerated answers and archived chats, as real exports have), imported
by `covey import` in a fresh home; that home is exported as covey JSON, which is imported in
another fresh home. Each import is its own process, measured by wait4 (wall time, peak RSS),
with the targets beside the figures.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

from app.sample_history import WORDS

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 300.0


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _node(node_id: str, parent: str | None, children: list[str], role: str | None, text: str,
          at: float, hidden: bool = False) -> dict[str, Any]:
    message = None if role is None else {
        "id": node_id, "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at, "update_time": None,
        "content": {"content_type": "text", "parts": [text]},
        "status": "finished_successfully", "end_turn": role == "assistant" or None, "weight": 1.0,
        "metadata": ({"is_visually_hidden_from_conversation": True} if hidden else
                     {"model_slug": "gpt-4o", "default_model_slug": "gpt-4o", "parent_id": parent,
                      "request_id": uuid.uuid4().hex[:16], "timestamp_": "absolute"}
                     if role == "assistant" else {}),
        "recipient": "all", "channel": None,
    }
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def chatgpt_conversation(rng: random.Random, index: int, messages: int,
                         words: int = 30) -> dict[str, Any]:
    """One conversation as ChatGPT exports it: a root, a hidden system message, then `messages`
    turns alternating user/assistant; every tenth conversation has a regenerated last answer."""
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(messages + 3)]
    start = 1_700_000_000.0 + index * 3600
    mapping: dict[str, Any] = {}
    root, system = ids[0], ids[1]
    mapping[root] = _node(root, None, [system], None, "", start)
    mapping[system] = _node(system, root, [ids[2]], "system", "", start, hidden=True)
    parent = system
    for n in range(messages):
        me = ids[2 + n]
        kids = [ids[3 + n]] if n + 1 < messages else []
        mapping[me] = _node(me, parent, kids, "user" if n % 2 == 0 else "assistant",
                            _text(rng, words), start + n * 30)
        parent = me
    current = parent
    if index % 10 == 0 and messages >= 2:  # the last answer regenerated: a second branch
        alt, asked = ids[-1], mapping[parent]["parent"]
        mapping[alt] = _node(alt, asked, [], "assistant", _text(rng, words), start + messages * 30)
        mapping[asked]["children"].append(alt)
        current = alt
    return {"title": f"Imported chat {index}", "create_time": start,
            "update_time": start + messages * 30, "mapping": mapping, "current_node": current,
            "conversation_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "is_archived": index % 50 == 0, "default_model_slug": "gpt-4o", "safe_urls": []}


def write_chatgpt_export(out: IO[str], conversations: int, messages: int, seed: int = 7,
                         start: int = 0) -> int:
    """Write a `conversations.json` list, one conversation at a time; return the messages kept
    by an import (hidden system messages are not)."""
    rng = random.Random(seed)
    out.write("[")
    kept = 0
    for i in range(start, start + conversations):
        conv = chatgpt_conversation(rng, i, messages)
        kept += messages + (1 if i % 10 == 0 and messages >= 2 else 0)
        out.write(("," if i > start else "") + json.dumps(conv))
    out.write("]")
    return kept


def _timed(argv: list[str], home: Path) -> dict[str, float]:
    """Run one `covey` command in `home`; wall seconds and the peak RSS of that process."""
    env = {**os.environ, "COVEY_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-3:])} failed: {err.strip() or out.strip()}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def run(conversations: int = 10_000, messages: int = 20, progress: IO[str] | None = None
        ) -> dict[str, object]:
    covey = [sys.executable, "-m", "app"]
    with tempfile.TemporaryDirectory(prefix="covey-bench-import-") as tmp:
        root = Path(tmp)
        export = root / "conversations.json"
        if progress:
            print(f"generating a ChatGPT export of {conversations:,} conversations…",
                  file=progress, flush=True)
        with export.open("w") as f:
            kept = write_chatgpt_export(f, conversations, messages)
        if progress:
            print(f"importing it ({export.stat().st_size / 1e6:.0f} MB)…", file=progress, flush=True)
        chatgpt = _timed([*covey, "import", str(export)], root / "a")
        as_json = root / "covey.json"
        subprocess.run([*covey, "export", "--format", "json", "-o", str(as_json)],
                       env={**os.environ, "COVEY_HOME": str(root / "a")}, check=True,
                       capture_output=True)
        if progress:
            print(f"importing the same as covey JSON ({as_json.stat().st_size / 1e6:.0f} MB)…",
                  file=progress, flush=True)
        own = _timed([*covey, "import", str(as_json)], root / "b")
        again = _timed([*covey, "import", str(export)], root / "a")  # nothing new
        sizes = {"chatgpt_mb": round(export.stat().st_size / 1e6, 1),
                 "covey_json_mb": round(as_json.stat().st_size / 1e6, 1)}
    report: dict[str, object] = {
        "conversations": conversations, "messages": kept, **sizes,
        "chatgpt_import": chatgpt, "covey_json_import": own, "chatgpt_reimport": again,
        "targets": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
        "within_targets": all(r["seconds"] <= TARGET_SECONDS and r["peak_rss_mb"] <= TARGET_RSS_MB
                              for r in (chatgpt, own)),
    }
    return report
