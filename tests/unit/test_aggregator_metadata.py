"""The commit-metadata codec: what a commit writes, the next owner reads back the same, for a
partition-wide watermark and for a device checkpoint, with and without an idle pin."""

from __future__ import annotations

import pytest

from services.telemetry.aggregator.metadata import (
    commit_metadata,
    decode_idle,
    decode_metadata,
    encode_metadata,
)
from services.telemetry.windows.clocks import Checkpoint
from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.partition import PartitionWindows

T0 = 1_700_000_000_000


@pytest.mark.parametrize("idle", [None, (42, T0 + 20_000)])
def test_a_partition_watermark_and_its_idle_pin_read_back(idle: tuple[int, int] | None) -> None:
    windows = PartitionWindows((10_000,), 5000)
    windows.advance_to(T0)
    text = commit_metadata(windows, 7, idle)
    assert text == encode_metadata(T0, idle)
    assert decode_metadata(text) == T0
    assert decode_idle(text) == idle
    assert Checkpoint.decode(text) is None  # a per-device owner takes it for an old version


@pytest.mark.parametrize("idle", [None, (42, T0 + 20_000)])
def test_a_device_checkpoint_and_its_idle_pin_read_back(idle: tuple[int, int] | None) -> None:
    windows = DeviceWindows((10_000,), 5000, 900_000)
    windows.advance_to(T0)
    text = commit_metadata(windows, 7, idle)
    assert Checkpoint.decode(text) == windows.checkpoint(7)
    assert decode_metadata(text) == T0
    assert decode_idle(text) == idle


@pytest.mark.parametrize("text", [None, "", "wm=", "wm=x", "at=3", "wm=5;idle=x@3"])
def test_what_is_not_metadata_reads_as_none(text: str | None) -> None:
    assert decode_idle(text) is None
    assert decode_metadata(text) == (5 if text and text.startswith("wm=5") else -1)
