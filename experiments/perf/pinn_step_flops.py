"""Benchmark: how much arithmetic one PINN training step is, by XLA's cost analysis.

The PINN of `vs_deepxde.py` (2 -> 32^6 -> 1, tanh) on Burgers: the gradient of the mean
squared residual `u_t + u u_x - nu u_xx` at `--points` points, with the residual's
derivatives taken three ways:

- `problem`: as `surrogates.physics.burgers.Burgers.residual` takes them (nested JVPs, the
  inner one's primal shared for `u`, `u_x`, `u_xx`; one more JVP for `u_t`);
- `tangents`: both first derivatives from one `vmap` over the tangent directions (the primal
  computed once), the second by a JVP of that;
- `jet`: `u`, `u_x`, `u_xx` by Taylor mode (`jax.experimental.jet`), `u_t` by a JVP.

Prints XLA's floating-point operation count of each compiled step (no timing: the count
does not depend on the machine's load), and checks that the three residuals agree.

    .venv/bin/python experiments/perf/pinn_step_flops.py [--points 4096]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental.jet import jet

from surrogates.models.pinn import PINN
from surrogates.physics.burgers import Burgers

PROBLEM = Burgers()
NU = PROBLEM.nu
T, X = jnp.eye(2)


def tangents(u, point):
    def first(p):
        return jax.vmap(lambda v: jax.jvp(u, (p,), (v,))[1])(jnp.eye(2, dtype=p.dtype))

    (value, slopes), (_, curvatures) = jax.jvp(lambda p: (u(p), first(p)), (point,), (X,))
    return slopes[0] + value * slopes[1] - NU * curvatures[1]


def taylor(u, point):
    value, (slope, curvature) = jet(u, (point,), ((X, jnp.zeros_like(point)),))
    rate = jax.jvp(u, (point,), (T,))[1]
    return rate + value * slope - NU * curvature


def step(graphdef, residual):
    def loss(params, points):
        model = nnx.merge(graphdef, params)
        r = jax.vmap(lambda p: residual(model, p))(points)
        return jnp.mean(jnp.square(r))

    return jax.jit(jax.value_and_grad(loss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4096)
    args = parser.parse_args()
    model = PINN(
        in_dims=2, out_dims=1, lower=(0, -1), upper=(1, 1), hidden=32, layers=6, rngs=nnx.Rngs(0)
    )
    graphdef, params = nnx.split(model)
    box = PROBLEM.domain
    points = box.sample(jax.random.key(0), args.points)
    ways = {"problem": PROBLEM.residual, "tangents": tangents, "jet": taylor}
    values = {}
    for name, residual in ways.items():
        compiled = step(graphdef, residual).lower(params, points).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        values[name] = float(compiled(params, points)[0])
        print(f"{name:9s} {cost['flops'] / 1e9:.3f} GFLOP per step")
    assert np.allclose(list(values.values()), values["problem"], rtol=1e-4), values


if __name__ == "__main__":
    main()
