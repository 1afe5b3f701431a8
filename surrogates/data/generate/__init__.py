"""Numerical solvers that write benchmark files in PDEBench's single-file layout."""
