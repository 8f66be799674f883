"""The conversation store: persistence, compaction, exchange between replicas, bad bytes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from loro import ExportMode

from app.config import Paths
from app.errors import CorruptStoreError, InvalidUpdateError, UnknownConversationError
from sync.store import Store, StoreEvent


def fill(store: Store, turns: int = 3) -> str:
    conv = store.create_conversation(system_prompt="be brief")
    for i in range(turns):
        store.add_message(conv, "user", f"question {i} about llamas")
        answer = store.add_message(conv, "assistant", "", status="streaming", model="m")
        for piece in ("Llamas ", "are ", f"great {i}."):
            store.append_text(conv, answer, piece)
        store.finish_message(conv, answer, "done")
    return conv


def doc_bytes(store: Store, conv: str) -> dict:
    return store._entry(store.db.conn, conv).doc.get_deep_value()


def test_reload_from_sqlite_equals_memory(store: Store, paths: Paths) -> None:
    conv = fill(store)
    before = store.conversation(conv)
    value_before = doc_bytes(store, conv)
    store.close()
    reopened = Store.open(paths, "DEVICE-A")
    try:
        assert reopened.conversation(conv) == before
        assert doc_bytes(reopened, conv) == value_before
        assert [m.text for m in before.messages][1] == "Llamas are great 0."
    finally:
        reopened.close()


def test_compaction_keeps_equality_and_deletes_only_folded_rows(store: Store, paths: Paths) -> None:
    conv = fill(store, turns=4)
    other = fill(store, turns=1)
    before = store.conversation(conv)
    rows = store.db.conn.execute("SELECT COUNT(*) FROM updates WHERE doc_id = ?", [conv]).fetchone()[0]
    other_rows = store.db.conn.execute("SELECT COUNT(*) FROM updates WHERE doc_id = ?", [other]).fetchone()[0]
    assert store.compact(conv) == rows
    assert store.db.conn.execute("SELECT COUNT(*) FROM updates WHERE doc_id = ?", [conv]).fetchone()[0] == 0
    assert store.db.conn.execute("SELECT COUNT(*) FROM updates WHERE doc_id = ?", [other]).fetchone()[0] == other_rows
    store.add_message(conv, "user", "after compaction")
    store.close()
    reopened = Store.open(paths, "DEVICE-A")
    try:
        after = reopened.conversation(conv)
        assert after.messages[:-1] == before.messages
        assert after.messages[-1].text == "after compaction"
    finally:
        reopened.close()


def test_automatic_compaction_bounds_the_update_log(paths: Paths) -> None:
    store = Store.open(paths, "DEVICE-A", compact_after=10)
    try:
        conv = store.create_conversation()
        answer = store.add_message(conv, "assistant", "", status="streaming")
        for i in range(45):
            store.append_text(conv, answer, f"{i},")
        rows = store.db.conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
        assert rows < 12
        assert store.conversation(conv).messages[0].text == "".join(f"{i}," for i in range(45))
    finally:
        store.close()


def test_two_stores_converge_by_exchanging_updates(tmp_path: Path) -> None:
    a = Store.open(Paths(tmp_path / "a", tmp_path / "a"), "A")
    b = Store.open(Paths(tmp_path / "b", tmp_path / "b"), "B")
    try:
        conv = fill(a, turns=1)
        assert b.import_updates(conv, a.export_updates(conv))
        # both write concurrently into the same conversation
        a.add_message(conv, "user", "from a")
        b.add_message(conv, "user", "from b")
        for src, dst in ((a, b), (b, a)):
            dst.import_updates(conv, src.export_updates(conv, dst.version_vector(conv)))
        assert a.conversation(conv) == b.conversation(conv)
        texts = {m.text for m in a.conversation(conv).messages}
        assert {"from a", "from b"} <= texts
        # exchanging again sends nothing new
        assert not a.import_updates(conv, b.export_updates(conv, a.version_vector(conv)))
        # the other store's view serves lists and search too
        assert [h.conversation_id for h in b.search("from a")] == [conv]
    finally:
        a.close()
        b.close()


def test_export_since_version_is_only_the_delta(store: Store) -> None:
    conv = fill(store, turns=2)
    vv = store.version_vector(conv)
    store.add_message(conv, "user", "one more")
    delta = store.export_updates(conv, vv)
    full = store.export_updates(conv)
    assert 0 < len(delta) < len(full) / 2


@pytest.mark.parametrize(
    "bad",
    [b"", b"garbage", b"\x00" * 64, b"\xff" * 5000],
    ids=["empty", "text", "zeros", "ff"],
)
def test_malformed_updates_are_refused_and_change_nothing(store: Store, bad: bytes) -> None:
    conv = fill(store, turns=1)
    before = store.conversation(conv)
    rows = store.db.conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
    with pytest.raises(InvalidUpdateError):
        store.import_updates(conv, bad)
    assert store.conversation(conv) == before
    assert store.db.conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0] == rows


def test_mutated_real_update_is_refused(store: Store, tmp_path: Path) -> None:
    conv = fill(store, turns=1)
    data = bytearray(store.export_updates(conv))
    data[len(data) // 2] ^= 0x5A
    other = Store.open(Paths(tmp_path / "o", tmp_path / "o"), "O")
    try:
        with pytest.raises(InvalidUpdateError):
            other.import_updates(conv, bytes(data))
        assert other.doc_ids() == []
        assert other.list_conversations() == []
    finally:
        other.close()


def test_bad_version_vector_is_refused(store: Store) -> None:
    conv = fill(store, turns=1)
    with pytest.raises(InvalidUpdateError):
        store.export_updates(conv, b"\xff\xff\xff\xff\xff")


def test_not_a_database_is_a_clear_error(paths: Paths) -> None:
    paths.ensure()
    paths.db_file.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CorruptStoreError, match="not a covey store"):
        Store.open(paths, "X")


def test_foreign_sqlite_database_is_a_clear_error(paths: Paths) -> None:
    paths.ensure()
    conn = sqlite3.connect(paths.db_file)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStoreError, match="not a covey store"):
        Store.open(paths, "X")


def test_truncated_database_is_a_clear_error(store: Store, paths: Paths) -> None:
    fill(store)
    store.close()
    data = paths.db_file.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(str(paths.db_file) + suffix).unlink(missing_ok=True)
    paths.db_file.write_bytes(data[:16] + b"\x00\x01" * 2000)
    with pytest.raises(CorruptStoreError):
        Store.open(paths, "X")


def test_unknown_and_ambiguous_ids(store: Store) -> None:
    with pytest.raises(UnknownConversationError):
        store.resolve("nope")
    with pytest.raises(UnknownConversationError):
        store.conversation("0" * 32)
    ids = [store.create_conversation() for _ in range(40)]
    assert store.resolve(ids[0][:12]) == ids[0]
    shared = sorted(ids)
    # with 40 random hex ids, some pair shares a first digit: that prefix is ambiguous
    first_digits = [i[0] for i in shared]
    dup = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(UnknownConversationError, match="several"):
        store.resolve(dup)


def test_delete_is_a_tombstone_that_leaves_lists_and_search(store: Store) -> None:
    conv = fill(store, turns=1)
    assert store.search("llamas")
    store.delete_conversation(conv)
    assert store.list_conversations() == []
    assert store.search("llamas") == []
    with pytest.raises(UnknownConversationError):
        store.conversation(conv)
    assert store.conversation_document(conv).deleted  # the document stays, so deletion syncs


def test_view_rows_match_documents(store: Store) -> None:
    conv = fill(store, turns=2)
    store.set_title(conv, "Llama facts")
    store.set_archived(conv, True)
    doc = store.conversation(conv)
    assert store.messages(conv) == doc.messages
    row = store.summary(conv)
    assert (row.title, row.message_count, row.archived) == ("Llama facts", 4, True)
    assert store.list_conversations() == []
    assert [r.id for r in store.list_conversations(include_archived=True)] == [conv]


def test_search_takes_fts_syntax_literally(store: Store) -> None:
    fill(store, turns=1)
    for query in ['"', "llamas OR", "NEAR(", "*", "a:b", "-x"]:
        store.search(query)  # no exception from FTS5 syntax
    assert store.search("llamas question")


def test_events_for_local_writes_and_other_processes(paths: Paths) -> None:
    a = Store.open(paths, "DEVICE-A")
    b = Store.open(paths, "DEVICE-A")  # a second "process" on the same home
    try:
        assert a.peer_id != b.peer_id  # never two live writers with one Loro peer id
        seen: list[StoreEvent] = []
        a.subscribe(seen.append)
        conv = a.create_conversation()
        assert seen[-1].doc_id == conv and seen[-1].origin == "local"
        b.poll()
        b.add_message(conv, "user", "written by b")
        changed = a.poll()
        assert changed == {conv}
        assert seen[-1] == StoreEvent(conv, "process")
        assert [m.text for m in a.conversation(conv).messages] == ["written by b"]
        a.add_message(conv, "user", "written by a")
        assert [m.text for m in b.conversation(conv).messages] == ["written by b", "written by a"]
    finally:
        a.close()
        b.close()


def test_writer_slot_and_peer_id_are_stable_across_restarts(paths: Paths) -> None:
    a = Store.open(paths, "D")
    first = a.peer_id
    a.close()
    b = Store.open(paths, "D")
    try:
        assert b.peer_id == first
    finally:
        b.close()


def test_snapshot_import_into_fresh_store(store: Store, tmp_path: Path) -> None:
    conv = fill(store, turns=2)
    snapshot = store._entry(store.db.conn, conv).doc.export(ExportMode.Snapshot())
    other = Store.open(Paths(tmp_path / "s", tmp_path / "s"), "S")
    try:
        assert other.import_updates(conv, bytes(snapshot))
        assert other.conversation(conv) == store.conversation(conv)
    finally:
        other.close()


def test_live_writers_answers_are_not_marked_interrupted(paths: Paths) -> None:
    a = Store.open(paths, "DEVICE-A")
    b = Store.open(paths, "DEVICE-A")
    try:
        conv = a.create_conversation()
        streaming = a.add_message(conv, "assistant", "half", status="streaming")
        assert b.recover_interrupted() == []  # a is alive and still streaming
        assert a.recover_interrupted() == []  # never what this process is streaming
        a.close()
        assert b.recover_interrupted() == [streaming]  # a's slot is free now: a is gone
        assert b.conversation(conv).messages[0].status == "interrupted"
        other = b.add_message(conv, "assistant", "", status="streaming")
    finally:
        b.close()
    c = Store.open(paths, "DEVICE-A")  # takes b's slot back: b's stream is dead, not c's
    try:
        assert c.recover_interrupted() == [other]
    finally:
        c.close()


def test_a_document_replaced_by_another_process_is_reloaded_whole(paths: Paths, tmp_path: Path) -> None:
    a = Store.open(paths, "D")
    b = Store.open(paths, "D")
    other = Store.open(Paths.at(tmp_path / "other"), "O")
    try:
        conv = a.create_conversation()
        other.import_updates(conv, a.export_updates(conv))
        a.add_message(conv, "user", "only in the copy given up")
        other.add_message(conv, "user", "in the copy taken instead")
        assert [m.text for m in b.messages(conv)] == ["only in the copy given up"]  # held
        a.replace_document(conv, other.export_updates(conv))
        # b noticed the replacement instead of serving (or merging into) its stale copy
        assert [m.text for m in b.messages(conv)] == ["in the copy taken instead"]
        with pytest.raises(InvalidUpdateError):
            a.replace_document(conv, b"not a document")
        assert [m.text for m in b.messages(conv)] == ["in the copy taken instead"]  # kept
    finally:
        for s in (a, b, other):
            s.close()


def test_branches_siblings_and_latest_leaf(store: Store) -> None:
    conv = store.create_conversation()
    q1 = store.add_message(conv, "user", "q1")
    a1 = store.add_message(conv, "assistant", "a1")
    q2 = store.add_message(conv, "user", "q2")
    a2 = store.add_message(conv, "assistant", "a2")
    q2b = store.add_message(conv, "user", "q2 edited", parent_id=a1)  # an edit: beside q2
    a2b = store.add_message(conv, "assistant", "a2b")
    a2c = store.add_message(conv, "assistant", "a2c", parent_id=q2b)  # regenerated
    root = store.add_message(conv, "user", "q1 edited", parent_id="")  # a new first prompt
    c = store.conversation(conv)
    assert [m.id for m in c.siblings(q2)] == [q2, q2b]
    assert [m.id for m in c.siblings(a2b)] == [a2b, a2c]
    assert [m.id for m in c.siblings(q1)] == [q1, root] and c.message(root).parent_id is None
    assert c.latest_leaf(q2) == a2 and c.latest_leaf(q2b) == a2c and c.latest_leaf(q1) == a2c
    assert c.latest_leaf() == root and c.latest_leaf("no-such-id") == root
    assert [m.text for m in c.thread(a2b)] == ["q1", "a1", "q2 edited", "a2b"]
    assert [m.text for m in c.thread(c.latest_leaf(q2))] == ["q1", "a1", "q2", "a2"]


def test_recent_prompts_newest_first_without_repeats(store: Store) -> None:
    conv = store.create_conversation()
    for text in ("one", "two", "one", "  ", "three"):
        store.add_message(conv, "user", text)
        store.add_message(conv, "assistant", "ok")
    assert store.recent_prompts() == ["three", "one", "two"]
    assert store.recent_prompts(limit=1) == ["three"]
