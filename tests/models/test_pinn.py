"""PINN: shapes, an independent NumPy forward pass (input scaling, periodic embedding, Fourier
features, factorised weights, gates), forward-mode derivatives against reverse mode and
finite differences, exact periodicity, the fixed Fourier frequencies, the registry, and a
small regression it must fit."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import PINN, available, build
from surrogates.models.pinn import Dense, FourierFrequencies

# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda model, x: model(x))

LOWER, UPPER = (-1.0, 0.0), (3.0, 6.0)
PERIODS = (None, 6.0)

EVERYTHING = {
    "periodic": True,
    "fourier_features": 6,
    "fourier_scale": 2.0,
    "factorised": True,
    "gates": True,
    "activation": "sin",
}


def make(seed: int = 0, **options) -> PINN:
    options = {"hidden": 8, "layers": 2, **options}
    return PINN(2, 3, LOWER, UPPER, PERIODS, rngs=nnx.Rngs(seed), **options)


def to_float64(model: nnx.Module) -> nnx.Module:
    """The model with every array of its state in float64 (call under `enable_x64`; build
    the model outside it, where its initialisers are already compiled for float32)."""
    state = nnx.state(model)
    nnx.update(model, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state))
    return model


def numpy_forward(model: PINN, x: np.ndarray, *, gated: bool | None = None) -> np.ndarray:
    """The model's function written out in NumPy from its weights; `gated=False` skips the
    gate update even if the model has gates."""
    act = {"tanh": np.tanh, "sin": np.sin}[model.activation]

    def dense(layer, h):
        weight = np.asarray(layer.kernel[...], np.float64)
        if layer.log_scale is not None:
            weight = weight * np.exp(np.asarray(layer.log_scale[...], np.float64))
        return h @ weight + np.asarray(layer.bias[...], np.float64)

    lower, upper = np.array(LOWER), np.array(UPPER)
    columns = []
    for axis, period in enumerate(model.periods):
        if period is None:
            columns.append(-1 + 2 * (x[:, axis] - lower[axis]) / (upper[axis] - lower[axis]))
        else:
            columns += [np.cos(2 * np.pi * x[:, axis] / period)]
            columns += [np.sin(2 * np.pi * x[:, axis] / period)]
    e = np.stack(columns, axis=1)
    if model.frequencies is not None:
        b = np.asarray(model.frequencies[...], np.float64)
        e = np.concatenate([np.cos(e @ b), np.sin(e @ b)], axis=1)
    gated = model.gate_u is not None if gated is None else gated
    if gated:
        u, v = act(dense(model.gate_u, e)), act(dense(model.gate_v, e))
    h = e
    for layer in model.hidden:
        h = act(dense(layer, h))
        if gated:
            h = h * u + (1 - h) * v
    return dense(model.output, h)


def corners_and_inside() -> np.ndarray:
    corners = np.array(list(itertools.product(*zip(LOWER, UPPER, strict=True))))
    inside = np.random.default_rng(0).uniform(LOWER, UPPER, (5, 2))
    return np.concatenate([corners, inside])


@pytest.mark.parametrize("options", [{}, EVERYTHING], ids=["plain", "everything"])
def test_shapes(options):
    model = make(**options)
    for shape in [(), (7,), (3, 4)]:
        assert apply(model, jnp.zeros((*shape, 2))).shape == (*shape, 3)


def test_wrong_number_of_coordinates_is_a_model_error():
    with pytest.raises(ModelError, match=r"coords must be \(\.\.\., 2\)"):
        make()(jnp.zeros((4, 3)))


@pytest.mark.parametrize("options", [{}, EVERYTHING], ids=["plain", "everything"])
def test_matches_an_independent_numpy_forward_pass(options):
    model = make(**options)
    x = corners_and_inside()
    expected = numpy_forward(model, x)
    np.testing.assert_allclose(apply(model, jnp.asarray(x, jnp.float32)), expected, atol=2e-5)


def test_plain_scales_the_box_onto_minus_one_one():
    model = make()
    corners = np.array(list(itertools.product(*zip(LOWER, UPPER, strict=True))))
    unit = np.array(list(itertools.product((-1.0, 1.0), repeat=2)))
    np.testing.assert_allclose(model.embed(jnp.asarray(corners, jnp.float32)), unit)


def test_gates_change_the_output():
    model = make(gates=True)
    x = corners_and_inside()
    gated = np.asarray(apply(model, jnp.asarray(x, jnp.float32)))
    ungated = numpy_forward(model, x, gated=False)
    assert np.abs(gated - ungated).max() > 1e-2


def derivatives(model: nnx.Module, point: jax.Array, step: float) -> dict[str, jax.Array]:
    """Second derivatives of the first output at `point` (d,) by nested JVPs and by reverse
    mode, first ones by a JVP, and both by central differences of width `step`; in one
    compiled function."""

    def u(p):
        return model(p)[0]

    def directional(p, axis):
        return jax.jvp(u, (p,), (jnp.eye(p.size)[axis],))[1]

    def second(p, a, b):
        return jax.jvp(lambda q: directional(q, a), (p,), (jnp.eye(p.size)[b],))[1]

    @jax.jit
    def compute(p):
        axes = range(p.size)
        shifts = step * jnp.eye(p.size)
        plus = jnp.stack([u(p + s) for s in shifts])
        minus = jnp.stack([u(p - s) for s in shifts])
        return {
            "nested": jnp.array([[second(p, a, b) for b in axes] for a in axes]),
            "hessian": jax.hessian(u)(p),
            "first": jnp.stack([directional(p, a) for a in axes]),
            "central": (plus - minus) / (2 * step),
            "curvature": (plus - 2 * u(p) + minus) / step**2,
        }

    return compute(point)


@pytest.mark.parametrize("options", [{}, EVERYTHING], ids=["plain", "everything"])
def test_nested_jvp_matches_reverse_mode_hessian_and_finite_differences(options):
    model = make(**options)
    with jax.enable_x64(True):
        found = derivatives(to_float64(model), jnp.array([0.7, 2.1]), step=1e-5)
    np.testing.assert_allclose(found["nested"], found["hessian"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(found["first"], found["central"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        np.diagonal(found["hessian"]), found["curvature"], rtol=1e-4, atol=1e-4
    )


def test_periodic_embedding_makes_the_output_periodic():
    periodic, plain = make(**EVERYTHING), make()
    with jax.enable_x64(True):
        periodic, plain = to_float64(periodic), to_float64(plain)
        x = jnp.asarray(corners_and_inside())
        shifted = x.at[:, 1].add(PERIODS[1])
        np.testing.assert_allclose(apply(periodic, shifted), apply(periodic, x), atol=1e-12)
        back = x.at[:, 1].add(-3 * PERIODS[1])
        np.testing.assert_allclose(apply(periodic, back), apply(periodic, x), atol=1e-12)
        assert np.abs(apply(plain, shifted) - apply(plain, x)).max() > 1e-3


def test_fourier_frequencies_are_fixed_state_not_parameters():
    model = make(layers=1, fourier_features=512, fourier_scale=3.0)
    frequencies = model.frequencies[...]
    assert isinstance(model.frequencies, FourierFrequencies)
    assert frequencies.shape == (2, 256)  # (embedded width, D / 2)
    assert abs(float(jnp.std(frequencies)) - 3.0) < 0.3
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert not any(leaf.shape == frequencies.shape for leaf in params)
    assert len(jax.tree.leaves(nnx.state(model, FourierFrequencies))) == 1
    assert model.hidden[0].kernel.shape == (512, 8)


def test_weight_factorisation_gives_the_same_function_at_initialisation():
    plain = make(**{**EVERYTHING, "factorised": False}, seed=3)
    factorised = make(**EVERYTHING, seed=3)

    def layers(model: PINN) -> list[Dense]:
        return [model.gate_u, model.gate_v, *model.hidden, model.output]

    for a, b in zip(layers(plain), layers(factorised), strict=True):
        assert a.log_scale is None
        w = b.kernel[...] * jnp.exp(b.log_scale[...])[None, :]
        np.testing.assert_allclose(w, a.kernel[...], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b.weight(), a.weight(), rtol=1e-5, atol=1e-7)
    x = jnp.asarray(corners_and_inside(), jnp.float32)
    np.testing.assert_allclose(apply(factorised, x), apply(plain, x), rtol=1e-4, atol=1e-5)
    names = {str(path[-1]) for path, _ in nnx.to_flat_state(nnx.state(factorised, nnx.Param))}
    assert {"kernel", "log_scale", "bias"} <= names


def test_weight_factorisation_draws_log_scales_per_output_unit():
    layer = Dense(2, 1000, factor=(1.0, 0.1), rngs=nnx.Rngs(0))
    s = np.asarray(layer.log_scale[...])
    assert s.shape == (1000,)
    assert abs(s.mean() - 1.0) < 0.02 and abs(s.std() - 0.1) < 0.01


def test_registry_builds_it_as_a_pointwise_model():
    model = build(
        "pinn",
        in_dims=2,
        out_dims=1,
        lower=(0.0, 0.0),
        upper=(1.0, 6.28),
        periods=(None, 6.28),
        rngs=nnx.Rngs(0),
        hidden=8,
    )
    assert isinstance(model, PINN)
    assert model(jnp.zeros((4, 2))).shape == (4, 1)
    assert {"pig", "pinn"} <= set(available("pointwise"))
    assert "pinn" not in available("operator")
    assert isinstance(nnx.eval_shape(lambda: build("pinn", **PINN.example(), **context())), PINN)


def context() -> dict:
    return {
        "in_dims": 2,
        "out_dims": 1,
        "lower": LOWER,
        "upper": UPPER,
        "periods": PERIODS,
        "rngs": nnx.Rngs(0),
    }


def test_misspelt_option_names_it():
    with pytest.raises(ModelError, match=r"has no argument 'hiden' \(did you mean 'hidden'\?\)"):
        build("pinn", hiden=8, **context())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"activation": "relu"}, "activation must be one of tanh, sin, gelu, swish"),
        ({"fourier_features": 5}, "fourier_features must be 0"),
        ({"layers": 0}, "layers must be at least 1"),
    ],
)
def test_bad_options_are_model_errors(options, match):
    with pytest.raises(ModelError, match=match):
        build("pinn", **options, **context())


def test_bad_box_is_a_model_error():
    with pytest.raises(ModelError, match="must exceed lower"):
        PINN(1, 1, (1.0,), (0.0,), (None,), rngs=nnx.Rngs(0))


def fit(model: nnx.Module, steps: int, learning_rate: float) -> float:
    """Relative L2 error of `model` on sin(pi x), x in [-1, 1], after `steps` Adam steps
    (cosine-decayed learning rate), full batch of 128 points, in one compiled scan."""
    x = jnp.linspace(-1.0, 1.0, 128)[:, None]
    target = jnp.sin(jnp.pi * x)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01))

    def loss(params):
        return jnp.mean(jnp.square(nnx.merge(graphdef, params, rest)(x) - target))

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), None

    carry = (params, optimizer.init(params))
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))(carry)
    prediction = nnx.merge(graphdef, params, rest)(x)
    return float(jnp.linalg.norm(prediction - target) / jnp.linalg.norm(target))


def test_fits_a_sine():
    model = PINN(1, 1, (-1.0,), (1.0,), (None,), hidden=16, layers=2, rngs=nnx.Rngs(0))
    # Seeds 0-3 reach 3e-3 to 7e-3.
    assert fit(model, steps=2000, learning_rate=1e-2) < 1e-2
