"""Analytic models: roofline (this issue); memory, collectives, pipeline to come."""

from perfmodel.analytic.roofline import PREDICTION_COLUMNS, Prediction, predict, roofline

__all__ = ["PREDICTION_COLUMNS", "Prediction", "predict", "roofline"]
