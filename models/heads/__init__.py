"""Prediction heads: camera (pose encoding), DPT dense heads, Gaussian head, track-head weights."""
