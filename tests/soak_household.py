"""Three devices through a rough day: a bounded soak over a LAN of network namespaces.

Every round each device writes through the real CLI (`covey ask`), while at random a device's
node is SIGKILLed (and restarted a round or two later) and a device's link is cut (and restored
later). At the end every link is restored and every node started, and the script checks:

- every store opens; everything a CLI acknowledged (exit 0) is on every device;
- no message is there twice; all devices hold identical histories.

It prints rounds, kills, cuts, writes acknowledged, time to converge and losses, and exits
non-zero on any loss. Needs root and iproute2. mDNS is off; traffic stays in the namespaces.

    python tests/soak_household.py --rounds 50 [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.devices import Device, eventually  # noqa: E402
from tests.netns import Lan, can_netns  # noqa: E402


class Member:
    def __init__(self, root: Path, lan: Lan, n: int) -> None:
        self.ns, address = lan.plug(n)
        self.inside = ["ip", "netns", "exec", self.ns]
        self.device = Device(root, f"dev{n}", host=address, port=7420)
        self.link_up = True

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.inside, sys.executable, "-m", "app", *args],
                              env=self.device.env(), cwd=Path(__file__).resolve().parent.parent,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    @property
    def serving(self) -> bool:
        return self.device.proc is not None and self.device.proc.poll() is None


def pair(inviter: Member, joiner: Member, code: str) -> None:
    invite = inviter.device.popen("pair", "--code", code, prefix=inviter.inside)
    try:
        for _ in range(100):
            out = joiner.run("pair", code, "--address", inviter.device.address, timeout=60)
            if out.returncode == 0:
                break
            time.sleep(0.2)  # the inviter is still starting
        else:
            raise RuntimeError(out.stderr.decode())
        invite.wait(60)
    finally:
        if invite.poll() is None:
            invite.kill()


def soak(rounds: int, seed: int, say=print) -> dict[str, object]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    lan = Lan(f"sk{os.getpid() % 10000}")
    root = Path(tempfile.mkdtemp(prefix="covey-soak-"))
    members: list[Member] = []
    acknowledged: set[str] = set()
    kills = cuts = refused = 0
    try:
        members = [Member(root, lan, n) for n in (1, 2, 3)]
        a, b, c = members
        pair(a, b, "31-amber-anchor")
        pair(a, c, "32-amber-anchor")
        for m in members:
            m.device.serve(prefix=m.inside)
        down_until: dict[int, int] = {}  # member index → round its node comes back
        cut_until: dict[int, int] = {}
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            for r in range(rounds):
                for i, until in list(down_until.items()):
                    if r >= until:
                        members[i].device.serve(prefix=members[i].inside)
                        del down_until[i]
                for i, until in list(cut_until.items()):
                    if r >= until:
                        lan.link(members[i].ns, up=True)
                        del cut_until[i]
                chaos = rng.random()
                victim = rng.randrange(3)
                if chaos < 0.35 and victim not in down_until:
                    members[victim].device.kill()  # SIGKILL, mid-sync as often as not
                    down_until[victim] = r + rng.randint(1, 2)
                    kills += 1
                elif chaos < 0.6 and victim not in cut_until:
                    lan.link(members[victim].ns, up=False)
                    cut_until[victim] = r + rng.randint(1, 3)
                    cuts += 1

                def write(m: Member, k: int = r) -> tuple[str, int]:
                    prompt = f"soak round {k} on {m.device.name} #{rng.randrange(10**9)}"
                    return prompt, m.run("ask", "--model", "fake", "--on", "local", prompt).returncode

                for prompt, code in pool.map(write, members):
                    if code == 0:
                        acknowledged.add(prompt)
                    else:
                        refused += 1
                time.sleep(rng.uniform(0.0, 0.4))
                if r % 10 == 9:
                    say(f"round {r + 1}/{rounds}: {len(acknowledged)} writes acknowledged, "
                        f"{kills} kills, {cuts} cuts")
        for i in list(cut_until):
            lan.link(members[i].ns, up=True)
        for m in members:
            if not m.serving:
                m.device.serve(prefix=m.inside)
        healed = time.monotonic()

        def converged() -> bool:
            views = [m.device.contents() for m in members]  # each store opens
            prompts = {t for conv in views[0].values() for (_, role, t) in conv if role == "user"}
            return all(v == views[0] for v in views) and acknowledged <= prompts

        eventually(converged, timeout=300, interval=0.5)
        converge_s = time.monotonic() - healed
        views = [m.device.contents() for m in members]
        prompts = [t for conv in views[0].values() for (_, role, t) in conv if role == "user"]
        ids = [mid for conv in views[0].values() for (mid, _, _) in conv]
        report = {
            "rounds": rounds, "seconds": round(healed - started, 1), "kills": kills, "cuts": cuts,
            "writes_acknowledged": len(acknowledged), "writes_refused": refused,
            "conversations": len(views[0]), "converge_s": round(converge_s, 2),
            "lost": len(acknowledged - set(prompts)),
            "duplicate_messages": len(ids) - len(set(ids)),
            "duplicate_prompts": len(prompts) - len(set(prompts)),
            "identical": all(v == views[0] for v in views),
            "tracebacks": sum(m.device.log.read_text(errors="replace").count("Traceback")
                              for m in members),
        }
        return report
    finally:
        for m in members:
            m.device.kill()
        lan.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    reason = can_netns()
    if reason:
        print(f"cannot soak here: network namespaces {reason}", file=sys.stderr)
        return 2
    report = soak(args.rounds, args.seed)
    for key, value in report.items():
        print(f"{key:<22}{value}")
    ok = (report["lost"] == 0 and report["duplicate_messages"] == 0 and report["identical"]
          and report["duplicate_prompts"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
