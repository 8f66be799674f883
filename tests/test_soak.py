"""A short run of the three-device soak (tests/soak_household.py runs the long one)."""

from __future__ import annotations

import pytest

from tests.netns import can_netns
from tests.soak_household import soak

REASON = can_netns()


@pytest.mark.skipif(REASON is not None, reason=f"network namespaces: {REASON}")
def test_three_devices_survive_kills_and_cuts_and_end_identical() -> None:
    report = soak(rounds=12, seed=11, say=lambda line: None)
    print(report)
    assert report["kills"] + report["cuts"] > 0 and report["full_disks"] > 0  # a rough day
    assert report["died_by_themselves"] == 0  # a full disk ends sessions, never a node
    assert report["writes_acknowledged"] + report["writes_refused"] == 36
    assert report["refusals_unclear"] == 0  # a write refused for a full disk says so
    assert report["lost"] == 0
    assert report["duplicate_messages"] == 0 and report["duplicate_prompts"] == 0
    assert report["identical"] is True
    assert report["tracebacks"] == 0
