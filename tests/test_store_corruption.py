"""Every flipped bit of a plan, data or checkpoint file (header line included) is reported as
`store.CorruptFile` naming the fix: never UnicodeDecodeError, ValueError or KeyError, never a
successful read (the format ignores no byte). The files come from the product's writers:
`rocknet plan`'s (plan.write, board_plan.write_data) and the checkpoint `runner.Runner` writes.

CPython flips every bit of each file. MicroPython (WebAssembly, slower) flips, in one call on
the device, every bit of the header line's magic, kind, version, separators and newline, and an
evenly spread sample of 192 bits of the header's digest and the body."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocknet_host import data
from rocknet_host.planning import board as board_plan
from rocknet_host.planning import features as plan
from rocknet_host.runtimes import import_device

board = import_device("rocknet.board")
checkpoint = import_device("rocknet.checkpoint")
sim = import_device("rocknet.radio.sim")
store = import_device("rocknet.store")

SAMPLE = 192  # digest and body bits flipped on MicroPython (all of them on CPython)

# device code: flip each bit of `raw` in turn and read it back as `kind`; counts by outcome
FLIP = """
from rocknet import store

def _flip_all(raw, kind, version, bits, fix):
    out = {}
    buf = bytearray(raw)
    for b in bits:
        i, m = b >> 3, 1 << (b & 7)
        buf[i] ^= m
        try:
            store.decode(bytes(buf), kind, "f", version)
            r = "read"
        except store.CorruptFile as e:
            r = "corrupt" if fix in str(e) else "corrupt without the fix: " + str(e)
        except Exception as e:
            r = "%s: %s" % (type(e).__name__, e)
        buf[i] ^= m
        out[r] = out.get(r, 0) + 1
    return out

result = _flip_all(raw, kind, version, bits, fix)
"""

FIX = {"plan": "rocknet plan", "data": "rocknet plan", "checkpoint": "delete it"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[bytes, int]]:
    """kind -> (file bytes, format version) of a small plan, data file and checkpoint."""
    out: Path = tmp_path_factory.mktemp("files")
    ds = data.synthetic(n_train=8, n_test=4, length=32, n_classes=2, seed=1)
    pl = plan.fit(ds, 2, n_features=168, seed=0)
    t = board_plan.Training(epochs=1, batch=4)
    plan.write(pl, out, board_plan.node_plans(pl, ds, t))
    board_plan.write_data(pl, ds, t, out)
    (out / "fleet.key").write_bytes(bytes(range(16)))
    runner = _runner(out, str(out / "ckpt"))
    runner._save(runner.node.checkpoint())  # what the loop does every checkpoint interval
    (written,) = [f for f in out.iterdir() if f.name.startswith("ckpt")]
    return {"plan": ((out / "node_00.plan").read_bytes(), store.PLAN_VERSION),
            "data": ((out / "node_00.data").read_bytes(), store.DATA_VERSION),
            "checkpoint": (written.read_bytes(), checkpoint.VERSION),
            "dir": (str(out).encode(), 0)}


def _runner(d: Path, ckpt: str, out=lambda line: None):
    p, pid, key, samples = board.load(str(d / "node_00.plan"), str(d / "fleet.key"),
                                      str(d / "node_00.data"))
    air = sim.Air()
    return board.Runner(p, key, samples, radio=air.radio, clock=air.now_ms, pid=pid,
                        checkpoint=ckpt, result=None, out=out)


def _bits(raw: bytes, sample: int | None) -> list[int]:
    """Bit indices to flip: all, or every bit up to the digest, the newline's, and ``sample``
    bits spread evenly over the digest and the body."""
    if sample is None:
        return list(range(8 * len(raw)))
    nl = raw.index(b"\n")
    digest = raw.rindex(b" ", 0, nl) + 1
    rest = [b for b in range(8 * digest, 8 * len(raw)) if not nl * 8 <= b < nl * 8 + 8]
    return (list(range(8 * digest)) + list(range(8 * nl, 8 * nl + 8))
            + rest[:: len(rest) // sample][:sample])


@pytest.mark.parametrize("kind", ["plan", "data", "checkpoint"])
def test_every_flipped_bit_is_a_clear_corrupt_file(device, files, kind):
    raw, version = files[kind]
    assert store.decode(raw, kind, "f", version)[0] == version  # the intact file reads
    on_mpy = getattr(device, "name", "") != "cpython"
    bits = _bits(raw, SAMPLE if on_mpy else None)
    outcome = device.call(FLIP, raw=raw, kind=kind, version=version, bits=bits, fix=FIX[kind])
    assert outcome == {"corrupt": len(bits)}, outcome


@pytest.mark.parametrize("kind", ["plan", "data"])
def test_another_format_version_is_refused_by_default(kind):
    """The plan's and the data file's versions are checked without the caller asking."""
    good = store.encode(kind, store.VERSIONS[kind], b"{}")
    assert store.decode(good, kind) == (store.VERSIONS[kind], b"{}")
    newer = store.encode(kind, store.VERSIONS[kind] + 1, b"{}")
    with pytest.raises(store.CorruptFile, match=f"{kind} format {store.VERSIONS[kind] + 1}; "
                                                f"this rocknet reads {store.VERSIONS[kind]}"):
        store.decode(newer, kind, "node_00." + kind)


@pytest.mark.parametrize("at", [3, 12, -1])  # header magic, header version, body
def test_a_damaged_checkpoint_slot_falls_back_to_the_other(files, tmp_path, at):
    """One slot damaged (a flipped bit in its header line or body): the runner says so and
    resumes from the other, good slot."""
    raw = files["checkpoint"][0]
    base = tmp_path / "ckpt"
    Path(f"{base}.a").write_bytes(raw)
    bad = bytearray(raw)
    bad[at] ^= 0x80
    Path(f"{base}.b").write_bytes(bytes(bad))
    lines: list[str] = []
    runner = _runner(Path(files["dir"][0].decode()), str(base), lines.append)
    assert runner.resumed is not None
    assert any(f"ignoring {base}.b" in x and "delete it" in x for x in lines), lines
    assert any(f"resumed from {base}.a" in x for x in lines), lines
