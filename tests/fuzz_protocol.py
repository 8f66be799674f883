"""Long fuzz run of the sync session (not collected by pytest).

    python tests/fuzz_protocol.py [--seconds 300] [--seed 1]

Feeds random bytes, mutated valid transcripts and random well-framed frames to a fresh session
over a real store, in random chunkings, and checks after every case that nothing crashed, the
store is unchanged, and a closed session said why. Prints the number of cases run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.frames import Frame, FrameType, encode
from tests.test_protocol_properties import check_unharmed, fuzz_target


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        at = rng.randrange(len(out))
        kind = rng.random()
        if kind < 0.5:
            out[at] ^= rng.randint(1, 255)
        elif kind < 0.7:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif kind < 0.85:
            del out[at : at + rng.randint(1, 16)]
        else:
            end = rng.randrange(len(out))
            out[at:at] = out[min(at, end) : max(at, end)][:4096]  # duplicate a slice
    return bytes(out)


def random_frames(rng: random.Random) -> bytes:
    values = [None, 0, 1, -1, 2**40, "x", "", [], {}, [1, "a"], True, 1.5, "a" * 300]
    data = b""
    for _ in range(rng.randint(1, 6)):
        keys = ["doc", "ack", "part", "last", "sizes", "entries", "protocols", "schema",
                "device", "household", "epoch", "instance", "digest", "reason", "n"]
        header = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 6))}
        data += encode(Frame(rng.choice(list(FrameType)), header, rng.randbytes(rng.randint(0, 200))))
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    transcript: bytes = fuzz_target()["transcript"]  # type: ignore[assignment]
    cases = {"random": 0, "mutated": 0, "frames": 0}
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        kind = rng.choice(list(cases))
        if kind == "random":
            data = rng.randbytes(rng.randint(0, 3000))
        elif kind == "mutated":
            data = mutate(rng, transcript)
        else:
            data = random_frames(rng)
        chunks = [rng.randint(1, 512) for _ in range(rng.randint(0, 5))]
        check_unharmed(data, chunks)
        cases[kind] += 1
    total = sum(cases.values())
    print(f"fuzzed {total} cases in {args.seconds:.0f}s ({total / args.seconds:.0f}/s): {cases}; "
          "no crash, store unchanged, every close had a reason")


if __name__ == "__main__":
    main()
