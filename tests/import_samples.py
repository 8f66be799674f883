"""Exports of other tools, written from their documented formats, for the import tests.

ChatGPT (`conversations.json`: a list of conversations whose `mapping` is a tree of nodes) and
Open WebUI (a list of `{chat: {history: {currentId, messages}}}`), each with what real exports
hold: a root placeholder, hidden system messages, edited prompts and regenerated answers
(branches), archived chats, images, code, tool output and reasoning.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def node(node_id: str, parent: str | None, children: list[str], role: str | None = None,
         parts: list[Any] | None = None, at: float | None = 1_700_000_000.0,
         kind: str = "text", hidden: bool = False, model: str | None = None,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    if role is None:
        return {"id": node_id, "message": None, "parent": parent, "children": children}
    content: dict[str, Any] = {"content_type": kind, "parts": parts or []}
    content.update(extra or {})
    metadata: dict[str, Any] = {"is_visually_hidden_from_conversation": True} if hidden else {}
    if model:
        metadata["model_slug"] = model
    return {"id": node_id, "parent": parent, "children": children, "message": {
        "id": node_id, "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at, "update_time": None, "content": content,
        "status": "finished_successfully", "end_turn": True, "weight": 1.0,
        "metadata": metadata, "recipient": "all"}}


def trip_conversation() -> dict[str, Any]:
    """Trip planning: the first prompt was edited (two user branches), and the answer to the
    edit was regenerated (two assistant branches); ChatGPT showed the regenerated one."""
    mapping = {
        "root": node("root", None, ["sys"]),
        "sys": node("sys", "root", ["u1", "u1b"], "system", [""], hidden=True),
        "u1": node("u1", "sys", ["a1"], "user", ["Plan a trip to Lisbon"], 1_700_000_010.5),
        "a1": node("a1", "u1", [], "assistant", ["Day 1: Alfama."], 1_700_000_020, model="gpt-4"),
        "u1b": node("u1b", "sys", ["a2", "a2b"], "user", ["Plan a trip to Porto"], 1_700_000_030),
        "a2": node("a2", "u1b", [], "assistant", ["Day 1: Ribeira."], 1_700_000_040, model="gpt-4"),
        "a2b": node("a2b", "u1b", ["u3"], "assistant", ["Day 1: the Douro valley."],
                    1_700_000_050, model="gpt-4o"),
        "u3": node("u3", "a2b", ["a3"], "user", ["And day 2?"], 1_700_000_060),
        "a3": node("a3", "u3", [], "assistant", ["Day 2: Livraria Lello."], 1_700_000_070,
                   model="gpt-4o"),
    }
    return {"title": "Trip planning", "create_time": 1_700_000_000.25, "update_time": 1_700_000_070,
            "mapping": mapping, "current_node": "a3", "conversation_id": "conv-trip",
            "is_archived": False, "default_model_slug": "gpt-4o"}


def tools_conversation() -> dict[str, Any]:
    """An archived chat with an image, code, its output (a tool), reasoning and custom
    instructions."""
    mapping = {
        "r": node("r", None, ["ctx"]),
        "ctx": node("ctx", "r", ["u"], "user", [], kind="user_editable_context",
                    extra={"user_profile": "I like cats", "user_instructions": "Be brief"}),
        "u": node("u", "ctx", ["think"], "user", [
            {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x",
             "width": 10, "height": 10}, "What is in this picture? Then sum 2+2 in Python."],
            kind="multimodal_text"),
        "think": node("think", "u", ["code"], "assistant", [], kind="thoughts",
                      extra={"thoughts": [{"summary": "looking", "content": "a cat"}]}),
        "code": node("code", "think", ["out"], "assistant", [], kind="code",
                     extra={"language": "python", "text": "print(2 + 2)"}),
        "out": node("out", "code", ["ans"], "tool", [], kind="execution_output",
                    extra={"text": "4"}),
        "ans": node("ans", "out", [], "assistant", ["A cat. And 2+2 = 4."], model="gpt-4o"),
    }
    return {"title": "Picture and sums", "create_time": 1_700_100_000, "mapping": mapping,
            "current_node": "ans", "conversation_id": "conv-tools", "is_archived": True}


def plain_conversation(n: int) -> dict[str, Any]:
    mapping = {"root": node("root", None, [f"u{n}"]),
               f"u{n}": node(f"u{n}", "root", [f"a{n}"], "user", [f"Question {n}"]),
               f"a{n}": node(f"a{n}", f"u{n}", [], "assistant", [f"Answer {n}"], model="gpt-4o")}
    return {"title": f"Chat {n}", "create_time": 1_700_200_000 + n, "mapping": mapping,
            "current_node": f"a{n}", "conversation_id": f"conv-plain-{n}", "is_archived": False}


def chatgpt_conversations() -> list[dict[str, Any]]:
    return [trip_conversation(), tools_conversation()] + [plain_conversation(n) for n in range(3)]


def write_chatgpt(where: Path, layout: str) -> Path:
    """The sample as ChatGPT ships it: "zip", "folder", "single" (conversations.json alone),
    "split" (conversations-000.json, -001 … in a zip, with export_manifest.json)."""
    convs = chatgpt_conversations()
    files = ({"conversations.json": convs} if layout != "split" else
             {f"conversations-{i:03d}.json": convs[i * 2:i * 2 + 2] for i in range(3)})
    extra = {"user.json": {"id": "user-1", "email": "me@example.org"},
             "message_feedback.json": [], "chat.html": "<html></html>"}
    if layout == "split":
        extra["export_manifest.json"] = {"files": sorted(files)}
    where.mkdir(parents=True, exist_ok=True)
    if layout == "single":
        path = where / "conversations.json"
        path.write_text(json.dumps(convs))
        return path
    if layout == "folder":
        folder = where / "chatgpt-export"
        folder.mkdir()
        for name, value in {**files, **extra}.items():
            (folder / name).write_text(value if isinstance(value, str) else json.dumps(value))
        return folder
    path = where / f"chatgpt-{layout}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in {**files, **extra}.items():
            z.writestr(name, value if isinstance(value, str) else json.dumps(value))
    return path


def openwebui_chats() -> list[dict[str, Any]]:
    """Two chats: one whose answer was regenerated, the first answer being the one shown
    (currentId is not the last child), and an archived one with a system prompt."""
    messages = {
        "m1": {"id": "m1", "parentId": None, "childrenIds": ["m2", "m3"], "role": "user",
               "content": "Name a colour", "timestamp": 1_710_000_000, "models": ["llama3.2:3b"]},
        "m2": {"id": "m2", "parentId": "m1", "childrenIds": ["m4"], "role": "assistant",
               "content": "Blue.", "model": "llama3.2:3b", "timestamp": 1_710_000_005},
        "m3": {"id": "m3", "parentId": "m1", "childrenIds": [], "role": "assistant",
               "content": "Green.", "model": "qwen2.5:7b", "timestamp": 1_710_000_009},
        "m4": {"id": "m4", "parentId": "m2", "childrenIds": ["m5"], "role": "user",
               "content": "Why?", "timestamp": 1_710_000_020},
        "m5": {"id": "m5", "parentId": "m4", "childrenIds": [], "role": "assistant",
               "content": "It is the sky's.", "model": "llama3.2:3b", "timestamp": 1_710_000_025},
    }
    first = {"id": "owui-1", "user_id": "u", "title": "Colours", "created_at": 1_710_000_000,
             "updated_at": 1_710_000_025, "archived": False, "pinned": False, "meta": {"tags": []},
             "chat": {"id": "", "title": "Colours", "models": ["llama3.2:3b"], "params": {},
                      "history": {"currentId": "m5", "messages": messages},
                      "messages": [messages[k] for k in ("m1", "m2", "m4", "m5")],
                      "tags": [], "timestamp": 1_710_000_000_000}}
    second_msgs = {
        "s1": {"id": "s1", "parentId": None, "childrenIds": ["s2"], "role": "user",
               "content": [{"type": "text", "text": "Translate: hello"},
                           {"type": "image_url", "image_url": {"url": "data:..."}}],
               "timestamp": 1_710_100_000},
        "s2": {"id": "s2", "parentId": "s1", "childrenIds": [], "role": "assistant",
               "content": "Bonjour", "model": "llama3.2:3b", "timestamp": 1_710_100_003},
    }
    second = {"id": "owui-2", "user_id": "u", "title": "French", "created_at": 1_710_100_000,
              "updated_at": 1_710_100_003, "archived": True, "meta": {},
              "chat": {"title": "French", "models": ["llama3.2:3b"],
                       "params": {"system": "You translate into French."},
                       "history": {"currentId": "s2", "messages": second_msgs}}}
    return [first, second]
