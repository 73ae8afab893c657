"""Power cuts at every flash write of the Minerva core on the real MicroPython and LittleFS.

tests/slot_power_cuts.py drives install, stage, shadow testing with its ring log, promote,
confirm, rollback and reject on a LittleFS image over a RAM block device, cutting power at
every program/erase operation, with and without a torn write; after each cut the board
restarts and must serve a verified capsule (the old or the new, whole), with its slots, state
and log readable and no capsule lost. A failure prints the operation and the write number.
"""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = (HERE / "slot_power_cuts.py").read_text()


def _run(micropython, config, heapsize="4M"):
    # The heap holds the flash images (a host-side stand-in for the chip), not just the board.
    proc = micropython.run(f"CONFIG = {config!r}\n" + SCRIPT, heapsize=heapsize, timeout=1200,
                           check=False)
    sweeps = [line for line in proc.stdout.splitlines() if line.startswith("SWEEP")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    total = int(proc.stdout.split("TOTAL")[-1].split()[0])
    return sweeps, total


def test_every_write_of_every_slot_operation(micropython, digits_versions, tmp_path):
    from minerva_packager.capsule.delta import make_delta

    delta = tmp_path / "v2.delta"
    delta.write_bytes(make_delta(digits_versions["v1"].read_bytes(),
                                 digits_versions["v2"].read_bytes()))
    config = {"delta": str(delta), "capsules": {k: str(v) for k, v in digits_versions.items()},
              "inbox_name": {"v1": "digits.cap", "v2": "digits_v2.cap", "weak": "weak.cap"},
              "pair": ["v1", "v2"], "third": "weak", "kernels": "python", "input_bytes": 64,
              "shadow_inputs": 40, "flash_blocks": 64}
    sweeps, total = _run(micropython, config)
    names = [line.split()[1] for line in sweeps]
    assert names == ["install", "stage", "shadow+log", "promote", "confirm", "rollback",
                     "reject", "supersede", "delta", "refuse"]
    for line in sweeps:
        writes = int(line.split("writes=")[1].split()[0])
        assert writes > 0, line
    assert total >= 1000, sweeps
    print("\n".join(sweeps))


def test_random_writes_of_a_larger_update(micropython, shared_models, tmp_path):
    from minerva_packager.capsule.pack import pack_tflite

    source = shared_models / "kws01_dscnn_int8.tflite"
    if not source.exists():
        pytest.skip(f"{source} is absent")
    caps = {}
    for label, version in (("v1", "1.0.0"), ("v2", "1.1.0")):
        caps[label] = tmp_path / f"kws_{label}.cap"
        caps[label].write_bytes(pack_tflite(source, name="kws", version=version))
    config = {"capsules": {k: str(v) for k, v in caps.items()},
              "inbox_name": {"v1": "kws.cap", "v2": "kws_v2.cap"}, "pair": ["v1", "v2"],
              "kernels": "viper", "input_bytes": 490, "shadow_inputs": 4, "flash_blocks": 96,
              "points": 40}
    sweeps, total = _run(micropython, config, heapsize="32M")
    for line in sweeps:
        writes = int(line.split("writes=")[1].split()[0])
        assert int(line.split("cuts=")[1].split()[0]) == min(40, 2 * writes), line
    assert int(sweeps[0].split("writes=")[1].split()[0]) > 200, sweeps[0]
