"""Byte counts as users type them (binary, as nccl-tests) and nccl-tests style size sweeps."""

from __future__ import annotations

import pytest

from perfmodel.errors import ShapeError
from perfmodel.units import MAX_BYTES, parse_bytes, sweep_sizes


@pytest.mark.parametrize("text, value", [
    ("8", 8), ("64K", 65536), ("256M", 268435456), ("8G", 8 << 30), ("1.5k", 1536),
    ("2T", 2 << 40), (" 16 MB ", 16 << 20), ("0.5K", 512), ("1.9", 1)])
def test_parse_bytes_binary_like_nccl_tests(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text, needle", [
    ("12Q", "cannot read"), ("1e30", "cannot read"), ("-8", "cannot read"), ("", "cannot read"),
    ("0", "must be positive"), ("0.4", "must be positive"),
    ("100000000000000000000000T", "over 2**60"), ("1048577T", "over 2**60"),
    ("9" * 400, "over 2**60")])            # 400 digits: float() gives inf, int() would raise
def test_parse_bytes_refuses_with_a_hint(text, needle):
    with pytest.raises(ShapeError) as exc:
        parse_bytes(text)
    assert needle in exc.value.message and exc.value.hint


def test_parse_bytes_largest_accepted_is_2_to_60():
    assert parse_bytes("1048576T") == MAX_BYTES == 2**60      # 2^20 x 2^40


def test_sweep_sizes_doubles_from_min_to_max():
    assert sweep_sizes(8, 64).tolist() == [8, 16, 32, 64]
    assert sweep_sizes(8, 100).tolist() == [8, 16, 32, 64]     # 128 > 100 is left out
    assert len(sweep_sizes(8, 8 << 30)) == 31                  # 2^3 .. 2^33


def test_sweep_sizes_rounds_each_step_down():
    # 1000 x 1.5 = 1500, x 1.5 = 2250, x 1.5 = 3375, x 1.5 = 5062.5 > 4000
    assert sweep_sizes(1000, 4000, 1.5).tolist() == [1000, 1500, 2250, 3375]
    assert sweep_sizes(3, 20, 1.5).tolist() == [3, 4, 6, 9, 13, 19]  # floor(4.5) = 4 ...


def test_sweep_sizes_stops_at_the_limit():
    assert sweep_sizes(1, 1 << 40, 2.0, limit=5).tolist() == [1, 2, 4, 8, 16]
    assert len(sweep_sizes(1, MAX_BYTES)) == 61                 # 2^0 .. 2^60


@pytest.mark.parametrize("lo, hi, factor, limit, needle", [
    (1 << 20, 1024, 2.0, 200, "min <= max"), (8, 64, 1.0, 200, "--step-factor > 1"),
    (8, 64, 0.5, 200, "--step-factor > 1"), (8, 64, 2.0, 0, "limit")])
def test_sweep_sizes_refuses_an_empty_or_endless_sweep(lo, hi, factor, limit, needle):
    with pytest.raises(ShapeError) as exc:
        sweep_sizes(lo, hi, factor, limit)
    assert needle in exc.value.message and exc.value.hint
