"""Fitting the answer scorer: the data sets, their candidate tables, and the fit (``python -m fitting``)."""
