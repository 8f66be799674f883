"""Realistic histories in covey's own JSON export format, for building households the way a user
does (`covey import`): the clone benchmark and the tests at a household's size use them."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

WORDS = ["the", "garden", "needs", "water", "before", "the", "heat", "of", "the", "afternoon", "while", "kettle", "recipes", "travel", "slowly", "across", "mountains", "of", "paper", "and", "quiet", "rivers", "of", "late", "autumn", "light"]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def export_payload(conversations: int, messages: int, seed: int = 1, words: int = 40,
                   label: str = "") -> dict[str, object]:
    rng = random.Random(seed)
    convs = []
    for c in range(conversations):
        parent = None
        msgs = []
        for m in range(messages):
            mid = uuid.UUID(int=rng.getrandbits(128)).hex
            msgs.append({"id": mid, "role": "user" if m % 2 == 0 else "assistant",
                         "text": _text(rng, words), "created_at": f"2026-0{1 + c % 9}-1{m % 10}T10:{m % 60:02d}:00",
                         "device": None, "model": None if m % 2 == 0 else "smollm2",
                         "status": "done", "parent_id": parent})
            parent = mid
        convs.append({"id": uuid.UUID(int=rng.getrandbits(128)).hex,
                      "title": f"{label}conversation {c}", "created_at": "2026-01-01T09:00:00",
                      "created_by": None, "system_prompt": None, "title_source": "user",
                      "archived": False, "deleted": False, "messages": msgs})
    return {"format": "covey-export", "version": 1, "exported_at": "2026-12-01T00:00:00",
            "conversations": convs}


def write_export(path: Path, conversations: int, messages: int, seed: int = 1,
                 words: int = 40, label: str = "") -> Path:
    path.write_text(json.dumps(export_payload(conversations, messages, seed, words, label)))
    return path
