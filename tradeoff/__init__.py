"""The accuracy-energy trade-off: sweep planning, run-directory records, the results table with
its Pareto front and hypervolume, and the plots. Shared by `sweep.py` and `analyze.py`."""
