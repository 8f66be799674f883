"""simonw/llm's `logs.db` (`llm logs path`), read-only.

Two generations of tables, read whichever the file has, both if both (llm does not copy one
into the other):

- `responses` (+ `conversations`): one row per prompt and its response, grouped by
  `conversation_id` (`llm -c` continues one); `system` is the system prompt.
- `threads` / `messages` / `parts` / `turns` (llm 0.3x): messages are content-addressed and
  hash-linked (`parent_hash`), shared between threads; a thread names its tip; a fork is a
  thread `forked_from` another. A covey conversation is a thread with all its forks, so the
  forks are its branches. A turn is one model call: it names the model, and its time is when
  the messages it added were written.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import ImportFormatError
from app.importers.base import EPOCH, Node, Tally, flatten, stable_id
from sync.conversation import Conversation, Message

SOURCE = "llm"
CHUNK = 500  # hashes per IN (...) query


def _iso(stamp: object) -> str:
    """llm's times ("2026-12-03T15:19:41.583209+00:00", or with a space) in covey's form."""
    if not isinstance(stamp, str) or len(stamp) < 19:
        return EPOCH
    day, clock = stamp[:10], stamp[11:].split("+")[0].rstrip("Z")
    return f"{day}T{(clock + '.000')[:12] if '.' not in clock else clock[:12]}+00:00"


class LlmLogsSource:
    label = "llm logs.db"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise ImportFormatError(f"{path.name} is not a readable SQLite database ({exc})") from None
        self.new = {"threads", "messages", "parts", "turns"} <= tables
        self.old = "responses" in tables
        if not (self.new or self.old):
            raise ImportFormatError(f"{path.name} is not simonw/llm's logs.db (it has neither a "
                                    "responses nor a threads table)")
        self._done = 0
        self._total = 1

    def progress(self) -> float:
        return min(1.0, self._done / self._total)

    def conversations(self, tally: Tally) -> Iterator[Conversation]:
        try:
            self._total = max(1, self._count("threads") + self._count("responses"))
            if self.new:
                yield from self._threads(tally)
            if self.old:
                yield from self._responses(tally)
        except sqlite3.DatabaseError as exc:
            raise ImportFormatError(f"{self.path.name} could not be read ({exc})") from None
        finally:
            self.db.close()

    def _count(self, table: str) -> int:
        ok = self.new if table == "threads" else self.old
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) if ok else 0

    # -- the older tables -----------------------------------------------------------------

    def _responses(self, tally: Tally) -> Iterator[Conversation]:
        has_names = bool(self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'conversations'").fetchone())
        name = "(SELECT name FROM conversations c WHERE c.id = r.conversation_id)" if has_names else "NULL"
        rows = self.db.execute(
            f"SELECT COALESCE(r.conversation_id, 'response:' || r.id) AS key, r.id, r.model,"
            f" r.prompt, r.system, r.response, r.datetime_utc, {name}"
            " FROM responses r ORDER BY key, r.datetime_utc, r.id")
        group: list[tuple[Any, ...]] = []
        for row in rows:
            if group and row[0] != group[0][0]:
                yield from self._one_response_group(group, tally)
                group = []
            group.append(row)
            self._done += 1
        if group:
            yield from self._one_response_group(group, tally)

    def _one_response_group(self, group: list[tuple[Any, ...]], tally: Tally) -> Iterator[Conversation]:
        key = str(group[0][0])
        messages: list[Message] = []
        system: str | None = None
        parent: str | None = None
        for _, rid, model, prompt, sys_prompt, response, stamp, _ in group:
            at = _iso(stamp)
            if isinstance(sys_prompt, str) and sys_prompt.strip():
                if system is None and not messages:
                    system = sys_prompt
                elif sys_prompt != system:  # a new system prompt part-way: kept where it came
                    messages.append(Message(stable_id(SOURCE, "r", rid, "system"), "system",
                                            sys_prompt, at, parent_id=parent))
                    parent = messages[-1].id
            for role, text in (("user", prompt), ("assistant", response)):
                if not isinstance(text, str) or not text.strip():
                    tally.skip(f"empty {'prompts' if role == 'user' else 'responses'}")
                    continue
                messages.append(Message(stable_id(SOURCE, "r", rid, role), role, text, at,
                                        model=model if role == "assistant" else None,
                                        parent_id=parent))
                parent = messages[-1].id
        if not messages:
            tally.skip("conversations with no messages")
            return
        tally.count(messages)
        title = group[0][7] if isinstance(group[0][7], str) and group[0][7].strip() else messages[0].text
        yield Conversation(id=stable_id(SOURCE, "conversation", key), title=_title(title),
                           created_at=messages[0].created_at, system_prompt=system,
                           title_source="user", messages=messages)

    # -- the newer tables -----------------------------------------------------------------

    def _threads(self, tally: Tally) -> Iterator[Conversation]:
        threads = {r[0]: r for r in self.db.execute(
            "SELECT id, name, tip_message_hash, forked_from, datetime_utc FROM threads")}
        lineages: dict[str, list[str]] = defaultdict(list)
        for tid in threads:
            lineages[_origin(tid, threads)].append(tid)
        turns: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for turn in self.db.execute("SELECT thread_id, tip_message_hash, model, datetime_utc"
                                    " FROM turns ORDER BY datetime_utc, id"):
            turns[turn[0]].append(turn)
        links = {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT hash, parent_hash, role FROM messages")}
        for origin in sorted(lineages, key=lambda t: (str(threads[t][4]), t)):
            members = lineages[origin]
            conv = self._lineage(origin, members, threads, turns, links, tally)
            self._done += len(members)
            if conv is not None:
                yield conv

    def _lineage(self, origin: str, members: list[str], threads: dict[str, tuple[Any, ...]],
                 turns: dict[str, list[tuple[Any, ...]]],
                 links: dict[str, tuple[str | None, str]], tally: Tally) -> Conversation | None:
        calls = sorted((t for m in members for t in turns.get(m, [])), key=lambda t: str(t[3]))
        when: dict[str, str] = {}
        model: dict[str, str] = {}
        tips = [(t[1], _iso(t[3]), t[2]) for t in calls]
        tips += [(threads[m][2], _iso(threads[m][4]), None) for m in members]
        for tip, at, by in tips:  # the earliest call that covers a message wrote it
            walk, seen = tip, set()
            while isinstance(walk, str) and walk in links and walk not in seen:
                seen.add(walk)
                when.setdefault(walk, at)
                if by and links[walk][1] == "assistant":
                    model.setdefault(walk, by)
                walk = links[walk][0]
        if not when:
            tally.skip("threads with no messages")
            return None
        texts = self._texts(list(when), tally)
        nodes: dict[str, Node] = {h: Node(h, links[h][0], [], None) for h in when}
        for h in sorted(when, key=lambda h: (when[h], h)):
            parent = links[h][0]
            if parent in nodes:
                nodes[parent].children.append(h)
        system: str | None = None
        for h, node in nodes.items():
            role, text = links[h][1], texts.get(h, "")
            if role == "system" and node.parent is None and system is None and text.strip():
                system = text  # the thread's system prompt (llm -s)
                continue
            if role not in ("user", "assistant", "system"):
                tally.skip("tool results" if role == "tool" else f"messages from {role!r}")
                continue
            if not text.strip():
                tally.skip("empty messages")
                continue
            node.message = Message(stable_id(SOURCE, origin, h), role, text, when[h],
                                   model=model.get(h) if role == "assistant" else None)
        # Shown: the tip of the thread used last (its newest turn, or its making: a fork).
        def used(tid: str) -> str:
            return max([_iso(threads[tid][4])] + [_iso(t[3]) for t in turns.get(tid, [])])
        messages = flatten(nodes, threads[max(members, key=lambda t: (used(t), t))][2])
        if not messages:
            tally.skip("threads with no messages")
            return None
        tally.count(messages)
        name = threads[origin][1]
        title = name if isinstance(name, str) and name.strip() else messages[0].text
        return Conversation(id=stable_id(SOURCE, origin), title=_title(title),
                            created_at=min(when.values()), system_prompt=system,
                            title_source="user", messages=messages)

    def _texts(self, hashes: list[str], tally: Tally) -> dict[str, str]:
        """Each message's text: its parts in order (text kept; tools and attachments marked;
        reasoning left out)."""
        pieces: dict[str, list[str]] = defaultdict(list)
        for start in range(0, len(hashes), CHUNK):
            chunk = hashes[start:start + CHUNK]
            rows = self.db.execute(
                "SELECT id, message_hash, type, tool_name, text, payload FROM parts"
                f" WHERE message_hash IN ({','.join('?' * len(chunk))}) ORDER BY message_hash, position",
                chunk)
            for part_id, h, kind, tool, text, payload in rows:
                if kind == "text":
                    pieces[h].append(text if isinstance(text, str) else self._fragments(part_id, payload))
                elif kind == "reasoning":
                    tally.skip("reasoning parts")
                elif kind in ("tool_call", "tool_result", "attachment"):
                    tally.skip(f"{kind.replace('_', ' ')} parts (kept as a [marker])")
                    pieces[h].append(f"[{kind.replace('_', ' ')}{': ' + tool if tool else ''}]")
                else:
                    tally.skip(f"{kind} parts")
        return {h: "\n".join(p for p in parts if p) for h, parts in pieces.items()}

    def _fragments(self, part_id: int, payload: object) -> str:
        """A text part whose text is kept in llm's fragments table (long, shared text)."""
        rows = self.db.execute(
            "SELECT f.content FROM part_fragments pf JOIN fragments f ON f.id = pf.fragment_id"
            " WHERE pf.part_id = ? ORDER BY pf.\"order\"", [part_id]).fetchall()
        if rows:
            return "".join(r[0] for r in rows if isinstance(r[0], str))
        try:
            value = json.loads(payload) if isinstance(payload, str) else None
        except json.JSONDecodeError:
            return ""
        return value.get("text", "") if isinstance(value, dict) and isinstance(value.get("text"), str) else ""


def _origin(thread: str, threads: dict[str, tuple[Any, ...]]) -> str:
    """The thread a fork was (ultimately) forked from."""
    seen = {thread}
    while isinstance(threads[thread][3], str) and threads[thread][3] in threads:
        thread = threads[thread][3]
        if thread in seen:  # (a loop in someone's database: stop where it closes)
            break
        seen.add(thread)
    return thread


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 60 else line[:59].rstrip() + "…"
