"""Fixtures: the microreboot binary under test (MICROREBOOT_BIN, else the release build)."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def _binary() -> str:
    if os.environ.get("MICROREBOOT_BIN"):
        return os.environ["MICROREBOOT_BIN"]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "release" / "microreboot")


@pytest.fixture(scope="session")
def binary() -> str:
    path = _binary()
    if not os.path.exists(path):
        pytest.fail(f"{path} not found: build with `cargo build --release` or set MICROREBOOT_BIN")
    return path
