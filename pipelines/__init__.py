"""Runnable jobs (``python -m pipelines.<job>``) that only compose tfcro library calls."""
