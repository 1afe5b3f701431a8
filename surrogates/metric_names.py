"""The benchmark metrics' names, in table order.

Configs validate `eval.metrics` against them and result files use them as variable names;
kept apart from `surrogates.metrics` so that reading a config does not import JAX.
"""

METRIC_NAMES: tuple[str, ...] = (
    "rmse",
    "nrmse",
    "crmse",
    "brmse",
    "frmse_low",
    "frmse_mid",
    "frmse_high",
    "max_error",
    "rel_l2",
    "vrmse",
)
