"""Job, the record of what is run: checked when made, one clear error per bad value."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfmodel.errors import ShapeError, UnknownNameError
from perfmodel.workload.job import Job, phase_dims


def test_defaults_and_derived_dtypes():
    job = Job()
    assert (job.phase, job.batch, job.seq, job.dtype) == ("inference", 1, None, "fp16")
    assert job.weights == job.kv == "fp16"  # weights and KV cache default to the dtype
    job = Job(dtype="bf16", weight_dtype="int4", kv_dtype="fp8")
    assert (job.weights, job.kv) == ("int4", "fp8")
    assert Job(phase="train").train and not job.train


def test_with_seq_fills_only_a_missing_length():
    assert Job().with_seq(4096).seq == 4096
    assert Job(seq=128).with_seq(4096).seq == 128


def test_round_trip():
    job = Job(phase="decode", batch=8, seq=4096, kv_dtype="fp8")
    assert Job.from_dict(job.to_dict()) == job
    with pytest.raises(UnknownNameError, match="batch"):
        Job.from_dict({"batchsize": 8})
    with pytest.raises(ShapeError):
        Job.from_dict(["decode"])  # type: ignore[arg-type]


@pytest.mark.parametrize("field, value", [
    ("phase", "serve"), ("optimizer", "lion"), ("precision", "fp12"), ("dtype", "fp33"),
    ("weight_dtype", "int3"), ("kv_dtype", "bf8"),
])
def test_unknown_names(field, value):
    with pytest.raises(UnknownNameError):
        Job(**{field: value})


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8"])
def test_batch_and_seq_must_be_positive_integers(value):
    with pytest.raises(ShapeError, match="positive integer"):
        Job(batch=value)
    with pytest.raises(ShapeError, match="positive integer"):
        Job(seq=value)


def test_replace_checks_again():
    with pytest.raises(ShapeError):
        replace(Job(), batch=0)


def test_phase_symbols():
    # decode: one new token per sequence against a cache of seq (perfmodel.graph.op symbols)
    assert phase_dims("decode", 4, 1024) == {"B": 4, "S": 1, "T": 1024, "L": 1}
    assert phase_dims("prefill", 4, 1024) == {"B": 4, "S": 1024, "T": 1024, "L": 1}
    assert phase_dims("train", 4, 1024) == {"B": 4, "S": 1024, "T": 1024, "L": 1024}


@pytest.mark.parametrize("field, value", [("batch", 10**12), ("seq", 2**24 + 1)])
def test_sizes_past_the_plausibility_limit_are_refused(field, value):
    # workload.job.LIMITS: 2**24 sequences or tokens; 10**12 is an exponent too many
    with pytest.raises(ShapeError, match="past perfmodel's limit of 16,777,216") as exc:
        Job(**{field: value})
    assert f"--{field} up to 16,777,216" in exc.value.hint
    assert Job(batch=2**24, seq=2**24).batch == 2**24    # the limit itself is accepted
