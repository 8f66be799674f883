"""Three devices through a rough day: a bounded soak over a LAN of network namespaces.

Every round each device writes through the real CLI (`covey ask`), while at random a device's
node is SIGKILLed (and restarted a round or two later), a device's link is cut (and restored
later), or a device's disk fills up (each home is a small tmpfs of its own; the filler goes a
round or two later, and that node is *not* restarted). At the end every link is restored and
every killed node started, and the script checks:

- every store opens; everything a CLI acknowledged (exit 0) is on every device;
- no message is there twice; all devices hold identical histories;
- no node died by itself (a full disk ends sessions, never the node), so the devices whose
  disks filled converge without a restart.

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

from tests.devices import Device, eventually
from tests.netns import Lan, can_netns

DISK = "48m"  # each device's home: room for the soak, and quick to fill


class Member:
    def __init__(self, root: Path, lan: Lan, n: int, disk: bool) -> None:
        self.ns, address = lan.plug(n)
        self.inside = ["ip", "netns", "exec", self.ns]
        self.disk: Path | None = None
        if disk:
            self.disk = root / f"disk{n}"
            self.disk.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs",
                            str(self.disk)], check=True, capture_output=True)
        self.device = Device(self.disk or root, f"dev{n}", host=address, port=7420)
        self.link_up = True

    def fill_disk(self) -> None:
        assert self.disk is not None
        with (self.disk / "filler").open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass  # full

    def free_disk(self) -> None:
        assert self.disk is not None
        (self.disk / "filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.disk is not None:
            subprocess.run(["umount", "-l", str(self.disk)], capture_output=True)

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


def soak(rounds: int, seed: int, say=print, disk_full: bool = True) -> dict[str, object]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    lan = Lan(f"sk{os.getpid() % 10000}")
    root = Path(tempfile.mkdtemp(prefix="covey-soak-"))
    members: list[Member] = []
    acknowledged: set[str] = set()
    kills = cuts = fills = refused = unclear = 0
    try:
        members = [Member(root, lan, n, disk_full) for n in (1, 2, 3)]
        a, b, c = members
        pair(a, b, "31-amber-anchor")
        pair(a, c, "32-amber-anchor")
        for m in members:
            m.device.serve(prefix=m.inside)
        down_until: dict[int, int] = {}  # member index → round its node comes back
        cut_until: dict[int, int] = {}
        full_until: dict[int, int] = {}
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
                for i, until in list(full_until.items()):
                    if r >= until:
                        members[i].free_disk()
                        del full_until[i]
                chaos = rng.random()
                victim = rng.randrange(3)
                if chaos < 0.35 and victim not in down_until:
                    members[victim].device.kill()  # SIGKILL, mid-sync as often as not
                    down_until[victim] = r + rng.randint(1, 2)
                    kills += 1
                elif chaos < 0.55 and victim not in cut_until:
                    lan.link(members[victim].ns, up=False)
                    cut_until[victim] = r + rng.randint(1, 3)
                    cuts += 1
                elif chaos < 0.75 and disk_full and victim not in full_until:
                    members[victim].fill_disk()  # mid-write and mid-sync as often as not
                    full_until[victim] = r + rng.randint(1, 2)
                    fills += 1

                def write(m: Member, k: int = r) -> tuple[str, subprocess.CompletedProcess[bytes]]:
                    prompt = f"soak round {k} on {m.device.name} #{rng.randrange(10**9)}"
                    return prompt, m.run("ask", "--model", "fake", "--on", "local", prompt)

                for prompt, done in pool.map(write, members):
                    if done.returncode == 0:
                        acknowledged.add(prompt)
                    else:  # (a full disk): said plainly, never a traceback
                        refused += 1
                        unclear += b"Traceback" in done.stderr or b"full" not in done.stderr
                time.sleep(rng.uniform(0.0, 0.4))
                if r % 10 == 9:
                    say(f"round {r + 1}/{rounds}: {len(acknowledged)} writes acknowledged, "
                        f"{kills} kills, {cuts} cuts, {fills} full disks")
        for i in list(cut_until):
            lan.link(members[i].ns, up=True)
        for i in list(full_until):
            members[i].free_disk()
        # a node that is down now and was not killed by us died by itself
        died = [m.device.name for i, m in enumerate(members)
                if not m.serving and i not in down_until]
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
            "full_disks": fills, "died_by_themselves": len(died),
            "writes_acknowledged": len(acknowledged), "writes_refused": refused,
            "refusals_unclear": unclear,
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
            m.unmount()
        lan.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-disk-full", action="store_true", help="no full-disk episodes")
    args = parser.parse_args()
    reason = can_netns()
    if reason:
        print(f"cannot soak here: network namespaces {reason}", file=sys.stderr)
        return 2
    report = soak(args.rounds, args.seed, disk_full=not args.no_disk_full)
    for key, value in report.items():
        print(f"{key:<22}{value}")
    ok = (report["lost"] == 0 and report["duplicate_messages"] == 0 and report["identical"]
          and report["duplicate_prompts"] == 0 and report["died_by_themselves"] == 0
          and report["refusals_unclear"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
