"""The suite's XLA options: added once, never over the user's own, and (in a fresh process)
the reason they exist: without them XLA hands convolutions to YNNPACK."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from surrogates import xla_options
from surrogates.xla_options import CONVOLUTIONS_WITHOUT_YNNPACK, apply_defaults

needs_jaxlib_0_10 = pytest.mark.skipif(
    not xla_options._jaxlib_supports_flag(), reason="the option exists in jaxlib 0.10 only"
)


@needs_jaxlib_0_10
def test_added_after_the_users_flags():
    environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert apply_defaults(environ)
    assert environ["XLA_FLAGS"] == (
        f"--xla_force_host_platform_device_count=4 {CONVOLUTIONS_WITHOUT_YNNPACK}"
    )
    assert not apply_defaults(environ), "added twice"


def test_users_choice_and_opt_out_are_kept():
    own = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=+LIBRARY_FUSION_TYPE_DOT"}
    assert not apply_defaults(dict(own))
    opted_out = {"SURROGATES_XLA_DEFAULTS": "0"}
    assert not apply_defaults(opted_out)
    assert "XLA_FLAGS" not in opted_out


PROBE = """
import surrogates, jax, jax.numpy as jnp
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
    dimension_numbers=("NHWC", "HWIO", "NHWC"))
text = jax.jit(conv).lower(jnp.ones((8, 64, 64, 32)), jnp.ones((3, 3, 32, 32))).compile().as_text()
print("ynn" if "__ynn_fusion" in text else "eigen")
"""


def compiled_by(extra: dict[str, str]) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_options.OPT_OUT)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ | extra, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@needs_jaxlib_0_10
def test_importing_the_suite_keeps_convolutions_off_ynnpack():
    assert compiled_by({}) == "eigen"
    assert compiled_by({xla_options.OPT_OUT: "0"}) == "ynn"
