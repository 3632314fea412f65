"""Error statistics by family, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfmodel.validate.metrics import error_summary


def test_by_family():
    df = pd.DataFrame({"family": ["gemm"] * 4 + ["membw"] * 2,
                       "error": [0.1, -0.2, 0.3, np.nan, 0.5, -0.5]})
    s = error_summary(df).set_index("family")
    # gemm |e| = 0.1, 0.2, 0.3: mean 0.2, median 0.2, p90 = 0.2 + 0.8 x 0.1 = 0.28
    assert s.loc["gemm", "rows"] == 4 and s.loc["gemm", "predicted"] == 3
    assert s.loc["gemm", "mape"] == pytest.approx(0.2)
    assert s.loc["gemm", "median_abs_error"] == pytest.approx(0.2)
    assert s.loc["gemm", "p90_abs_error"] == pytest.approx(0.28)
    assert s.loc["gemm", "median_error"] == pytest.approx(0.1)
    assert s.loc["membw", "mape"] == pytest.approx(0.5)
    assert s.loc["all", "mape"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.5 + 0.5) / 5)
