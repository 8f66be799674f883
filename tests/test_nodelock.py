"""The lock that says which process is this device's node, and who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.nodelock import NodeError, NodeLock
from tests.devices import eventually


def test_the_holder_is_none_then_this_process_then_another(tmp_path: Path) -> None:
    assert NodeLock.holder(tmp_path) is None and not NodeLock.held(tmp_path)
    mine = NodeLock(tmp_path)
    mine.acquire()
    try:  # the app hosting its own node sees its own pid: it answers in-process
        assert NodeLock.holder(tmp_path) == os.getpid()
        with pytest.raises(NodeError, match=str(os.getpid())):
            NodeLock(tmp_path).acquire()
    finally:
        mine.release()
    assert NodeLock.holder(tmp_path) is None
    holding = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from sync.nodelock import NodeLock; NodeLock(Path(sys.argv[1])).acquire(); "
         "print('held', flush=True); time.sleep(30)", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE)
    try:
        assert holding.stdout is not None and holding.stdout.readline() == b"held\n"
        assert NodeLock.holder(tmp_path) == holding.pid  # covey serve: ask hands it over
    finally:
        holding.kill()
        holding.wait()
    eventually(lambda: NodeLock.holder(tmp_path) is None, timeout=10)  # a dead holder holds nothing
