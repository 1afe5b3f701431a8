"""Evaluation: benchmark metrics (PDEBench definitions plus relative L2 and VRMSE)."""

from surrogates.evaluation.metrics import METRIC_NAMES as METRIC_NAMES
from surrogates.evaluation.metrics import brmse as brmse
from surrogates.evaluation.metrics import compute_metrics as compute_metrics
from surrogates.evaluation.metrics import crmse as crmse
from surrogates.evaluation.metrics import frmse as frmse
from surrogates.evaluation.metrics import max_error as max_error
from surrogates.evaluation.metrics import nrmse as nrmse
from surrogates.evaluation.metrics import rel_l2 as rel_l2
from surrogates.evaluation.metrics import rmse as rmse
from surrogates.evaluation.metrics import vrmse as vrmse
