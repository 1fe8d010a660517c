"""Helpers of ``bench/run.py``: contenders, the child programs they run, measuring, reporting."""
