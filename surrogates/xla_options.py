"""XLA options the suite sets for JAX's CPU backend, before JAX starts it.

jax 0.10's CPU backend hands every convolution to the YNNPACK library by default. On the
suite's convolutional models its kernels run slower than XLA's own (Eigen) convolutions: a
SineNet (hidden 32, 4 waves, 64^2, batch 8) trains at 6.50 samples/s and infers at 27.95 with
the option, 5.66 and 21.85 without (`SURROGATES_XLA_DEFAULTS=0`), measured with
`experiments/perf/vs_pytorch_sinenet.py --hidden 32 --waves 4 --size 64 --rounds 2 --steps 2`.
So the suite turns YNNPACK's convolutions off, leaving its matrix products (the FNO's) alone.

The option is added to `XLA_FLAGS` when `surrogates` is imported, which is before JAX's first
computation creates the backend in any program that imports the suite first. It is left out
when the user's `XLA_FLAGS` already choose YNNPACK fusion types, when
`SURROGATES_XLA_DEFAULTS=0`, and for jaxlib versions other than 0.10 (XLA stops the process
on a flag it does not know). GPUs ignore it.
"""

from __future__ import annotations

import importlib.metadata
import os

CONVOLUTIONS_WITHOUT_YNNPACK = (
    "--xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
)
OPT_OUT = "SURROGATES_XLA_DEFAULTS"


def _jaxlib_supports_flag() -> bool:
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return False
    return version.split(".")[:2] == ["0", "10"]


def apply_defaults(environ: dict[str, str] | None = None) -> bool:
    """Add the suite's XLA options to `environ["XLA_FLAGS"]` (default `os.environ`);
    True if they were added."""
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if environ.get(OPT_OUT) == "0" or "ynn_fusion_type" in flags or not _jaxlib_supports_flag():
        return False
    environ["XLA_FLAGS"] = f"{flags} {CONVOLUTIONS_WITHOUT_YNNPACK}".strip()
    return True
