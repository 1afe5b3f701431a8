"""Evaluation: rollouts scored with the benchmark metrics, xarray results, tables and plots.

The metrics themselves (PDEBench's definitions plus relative L2 and VRMSE) live in
`surrogates.metrics`, which training's validation uses too; they are re-exported here.
"""

from surrogates.metric_names import METRIC_NAMES as METRIC_NAMES
from surrogates.metrics import brmse as brmse
from surrogates.metrics import compute_metrics as compute_metrics
from surrogates.metrics import crmse as crmse
from surrogates.metrics import frmse as frmse
from surrogates.metrics import max_error as max_error
from surrogates.metrics import nrmse as nrmse
from surrogates.metrics import rel_l2 as rel_l2
from surrogates.metrics import rmse as rmse
from surrogates.metrics import vrmse as vrmse
