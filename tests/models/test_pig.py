"""PIG: shapes, the Gaussian embedding against a direct NumPy sum (diagonal and rotated
covariances, near and far from the centres, in float32 and float64), centres bounded by the
enlarged box, forward-mode derivatives against reverse mode, its own derivative rule against
plain automatic differentiation (the Laplacian of a residual and the parameter gradient of
its mean square), the registry, and a small regression it must fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.spatial.transform import Rotation
from test_pinn import derivatives, fit, to_float64

from surrogates.errors import ModelError
from surrogates.models import PIG, available, build
from surrogates.models.pinn import to_unit_box
from surrogates.physics.derivatives import laplacian

# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda model, x: model(x))
embed = nnx.jit(lambda model, x: model.embed(x))

BOXES = {1: ((-1.0,), (3.0,)), 2: ((-1.0, 0.0), (3.0, 1.0)), 3: ((-1.0, 0.0, 2.0), (3.0, 1.0, 5.0))}


def make(dims: int = 2, seed: int = 0, **options) -> PIG:
    options = {"gaussians": 6, "channels": 3, **options}
    lower, upper = BOXES[dims]
    return PIG(dims, 2, lower, upper, rngs=nnx.Rngs(seed), **options)


def points(dims: int, n: int = 9) -> np.ndarray:
    lower, upper = BOXES[dims]
    return np.random.default_rng(1).uniform(lower, upper, (n, dims))


def randomise(model: PIG, seed: int = 2) -> None:
    """Give the means, widths and weights random values away from their initial ones."""
    rng = np.random.default_rng(seed)
    shape = model.mean_raw.shape
    model.mean_raw[...] = jnp.asarray(rng.normal(0.0, 0.8, shape), jnp.float32)
    model.log_sigma[...] = jnp.asarray(rng.uniform(np.log(0.2), np.log(0.8), shape), jnp.float32)
    model.weight[...] = jnp.asarray(rng.normal(size=model.weight.shape), jnp.float32)


def numpy_embedding(x: np.ndarray, centres, covariances, weights) -> np.ndarray:
    """sum_i w_ci exp(-(x - mu_ci)^T Sigma_ci^-1 (x - mu_ci) / 2) directly, point by point and
    Gaussian by Gaussian: x (P, d) -> (P, C)."""
    channels, gaussians = weights.shape
    out = np.zeros((len(x), channels))
    for p, c, i in np.ndindex(len(x), channels, gaussians):
        offset = x[p] - centres[c, i]
        quadratic = offset @ np.linalg.inv(covariances[c, i]) @ offset
        out[p, c] += weights[c, i] * np.exp(-0.5 * quadratic)
    return out


def numpy_centres(model: PIG) -> np.ndarray:
    lower, upper = np.array(model.lower), np.array(model.upper)
    raw = np.asarray(model.mean_raw[...], np.float64)
    return (lower + upper) / 2 + (upper - lower) / 2 * (1 + model.margin) * np.tanh(raw)


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_shapes(covariance):
    model = make(covariance=covariance)
    for shape in [(), (7,), (3, 4)]:
        assert apply(model, jnp.zeros((*shape, 2))).shape == (*shape, 2)
        assert embed(model, jnp.zeros((*shape, 2))).shape == (*shape, 3)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_diagonal_embedding_is_a_sum_of_gaussians(dims):
    model = make(dims)
    randomise(model)
    half = (np.array(model.upper) - np.array(model.lower)) / 2
    sigma = half * np.exp(np.asarray(model.log_sigma[...], np.float64))  # domain units
    covariances = np.vectorize(np.diag, signature="(d)->(d,d)")(sigma**2)
    x = points(dims)
    expected = numpy_embedding(x, numpy_centres(model), covariances, np.asarray(model.weight[...]))
    np.testing.assert_allclose(embed(model, jnp.asarray(x, jnp.float32)), expected, atol=2e-5)
    np.testing.assert_allclose(model.widths(), sigma, rtol=1e-5)
    np.testing.assert_allclose(model.centres(), numpy_centres(model), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_full_covariance_starts_as_the_diagonal_one(dims):
    diagonal, full = make(dims), make(dims, covariance="full")
    x = jnp.asarray(points(dims), jnp.float32)
    np.testing.assert_allclose(apply(full, x), apply(diagonal, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(full.covariances(), diagonal.covariances(), rtol=1e-6)


def explicit_rotations(model: PIG, seed: int = 3) -> np.ndarray:
    """Set random rotations on `model` and return them as matrices (C, N, d, d), computed
    by SciPy from the same angles or quaternions."""
    rng = np.random.default_rng(seed)
    channels, gaussians = model.weight.shape
    if model.in_dims == 2:
        angles = rng.uniform(-np.pi, np.pi, (channels, gaussians))
        model.rotation[...] = jnp.asarray(angles, jnp.float32)
        matrices = Rotation.from_euler("z", angles.reshape(-1, 1)).as_matrix()[:, :2, :2]
    else:
        # Unnormalised on purpose: the model normalises the quaternion itself.
        quaternions = rng.normal(size=(channels, gaussians, 4)) * 1.7  # (w, x, y, z)
        model.rotation[...] = jnp.asarray(quaternions, jnp.float32)
        scalar_last = np.roll(quaternions, -1, axis=-1).reshape(-1, 4)
        matrices = Rotation.from_quat(scalar_last).as_matrix()
    d = model.in_dims
    return matrices.reshape(channels, gaussians, d, d)


@pytest.mark.parametrize("dims", [2, 3])
def test_rotated_covariance_matches_an_explicit_one(dims):
    model = make(dims, covariance="full")
    randomise(model)
    rotations = explicit_rotations(model)
    half = (np.array(model.upper) - np.array(model.lower)) / 2
    sigma = np.exp(np.asarray(model.log_sigma[...], np.float64))
    # Sigma = R diag(sigma^2) R^T in unit-box coordinates, then scaled to the domain.
    unit = np.einsum("cnij,cnj,cnkj->cnik", rotations, sigma**2, rotations)
    covariances = half[:, None] * unit * half[None, :]
    np.testing.assert_allclose(model.covariances(), covariances, rtol=1e-4, atol=1e-6)
    x = points(dims)
    expected = numpy_embedding(x, numpy_centres(model), covariances, np.asarray(model.weight[...]))
    np.testing.assert_allclose(embed(model, jnp.asarray(x, jnp.float32)), expected, atol=5e-5)
    np.testing.assert_allclose(
        model.widths(), np.sqrt(np.diagonal(covariances, axis1=-2, axis2=-1)), rtol=1e-4
    )


def random_model(dims: int, covariance: str) -> tuple[PIG, np.ndarray]:
    """A model with random means, widths, weights (and rotations), and its covariances in
    domain coordinates (C, N, d, d), from SciPy's rotations for a full covariance."""
    model = make(dims, covariance=covariance)
    randomise(model)
    half = (np.array(model.upper) - np.array(model.lower)) / 2
    sigma = np.exp(np.asarray(model.log_sigma[...], np.float64))
    if covariance == "full":
        explicit_rotations(model)
        rotations = scipy_rotations(model)
    else:
        rotations = np.broadcast_to(np.eye(dims), (*sigma.shape, dims))
    unit = np.einsum("cnij,cnj,cnkj->cnik", rotations, sigma**2, rotations)
    return model, half[:, None] * unit * half[None, :]


def scipy_rotations(model: PIG) -> np.ndarray:
    """The model's rotations (C, N, d, d) by SciPy from its stored (float32) angles or
    quaternions, exactly as float64 sees them."""
    raw = np.asarray(model.rotation[...], np.float64)
    if model.in_dims == 2:
        matrices = Rotation.from_euler("z", raw.reshape(-1, 1)).as_matrix()[:, :2, :2]
    else:
        matrices = Rotation.from_quat(np.roll(raw, -1, axis=-1).reshape(-1, 4)).as_matrix()
    d = model.in_dims
    return matrices.reshape(*raw.shape[:2], d, d)


def near_and_far(dims: int) -> np.ndarray:
    """Points inside the box, up to half a box width outside it, and one two box widths
    away (where every Gaussian is negligible)."""
    lower, upper = (np.array(b) for b in BOXES[dims])
    rng = np.random.default_rng(4)
    unit = np.concatenate(
        [rng.uniform(-1, 1, (12, dims)), rng.uniform(-1.5, 1.5, (6, dims)), [[5.0] * dims]]
    )
    return (lower + upper) / 2 + (upper - lower) / 2 * unit


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
@pytest.mark.parametrize("dims", [2, 3])
def test_embedding_matches_numpy_near_and_far_in_float64(dims, covariance):
    model, covariances = random_model(dims, covariance)
    x = near_and_far(dims)
    expected = numpy_embedding(x, numpy_centres(model), covariances, np.asarray(model.weight[...]))
    assert np.abs(expected[-1]).max() < 1e-20  # the far point: every Gaussian negligible
    np.testing.assert_allclose(embed(model, jnp.asarray(x, jnp.float32)), expected, atol=5e-5)
    with jax.enable_x64(True):
        found = jax.jit(lambda m, x: m.embed(x))(to_float64(model), jnp.asarray(x))
        # Relative, so the far point's tiny features are checked too.
        np.testing.assert_allclose(found, expected, rtol=1e-9, atol=0)


def reference_call(model: PIG, coords: jax.Array) -> jax.Array:
    """The model's function written directly (the Gaussian offsets as one (..., C, N, d)
    array), differentiated by plain automatic differentiation."""
    z = to_unit_box(coords, model.lower, model.upper)
    offsets = z[..., None, None, :] - model.unit_centres()
    whitened = jnp.einsum("...cnk,cnkj->...cnj", offsets, model.rotations())
    whitened = whitened * jnp.exp(-model.log_sigma[...])
    gaussians = jnp.exp(-0.5 * jnp.sum(jnp.square(whitened), axis=-1))
    h = jnp.einsum("...cn,cn->...c", gaussians, model.weight[...])
    for layer in model.hidden:
        h = jnp.tanh(layer(h))
    return model.output(h)


# The rule is the same code for every case: one rotated and one axis-aligned case suffice.
@pytest.mark.parametrize(("dims", "covariance"), [(2, "full"), (3, "diagonal")])
def test_derivative_rule_matches_plain_autodiff(dims, covariance):
    """The Laplacian by nested JVPs (as a physics residual takes it, vmapped over points)
    against the trace of `jax.hessian`, and the parameter gradient of a residual's mean
    square against the directly written model's, in float64."""
    model, _ = random_model(dims, covariance)
    axes = tuple(range(dims))
    with jax.enable_x64(True):
        graphdef, params, rest = nnx.split(to_float64(model), nnx.Param, ...)
        x = jnp.asarray(near_and_far(dims)[:-1])

        def loss(params, call):
            model = nnx.merge(graphdef, params, rest)

            def u(p):
                return call(model, p)

            residual = jax.vmap(lambda p: laplacian(u, p, axes) + u(p))(x)
            return jnp.mean(jnp.square(residual))

        @jax.jit
        def compute(params):
            model = nnx.merge(graphdef, params, rest)
            nested = jax.vmap(lambda p: laplacian(model, p, axes))(x)
            hessian = jax.vmap(jax.hessian(model))(x)
            fast = jax.value_and_grad(loss)(params, lambda m, p: m(p))
            plain = jax.value_and_grad(loss)(params, reference_call)
            return nested, jnp.trace(hessian, axis1=-2, axis2=-1), fast, plain

        nested, traced, fast, plain = compute(params)
        np.testing.assert_allclose(nested, traced, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(fast[0], plain[0], rtol=1e-12)
        for found, expected in zip(
            jax.tree.leaves(fast[1]), jax.tree.leaves(plain[1]), strict=True
        ):
            scale = np.abs(expected).max()
            np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-12 * scale)


def test_centres_start_inside_the_box_and_never_leave_the_enlarged_box():
    model = make(gaussians=50, margin=0.25)
    lower, upper = np.array(model.lower), np.array(model.upper)
    centres = np.asarray(model.centres())
    assert centres.shape == (3, 50, 2)
    assert np.all(centres >= lower) and np.all(centres <= upper)
    np.testing.assert_allclose(
        model.widths(), np.broadcast_to((upper - lower) / 2 * 0.1, (3, 50, 2))
    )

    rng = np.random.default_rng(0)
    model.mean_raw[...] = jnp.asarray(rng.choice([-1e6, 1e6], (3, 50, 2)), jnp.float32)
    centres = np.asarray(model.centres())
    slack = 0.25 * (upper - lower) / 2
    assert np.all(centres >= lower - slack - 1e-5) and np.all(centres <= upper + slack + 1e-5)
    # Saturated: every centre sits on the enlarged box's boundary.
    distance = np.abs(centres - (lower + upper) / 2)
    np.testing.assert_allclose(
        distance, np.broadcast_to((upper - lower) / 2 * 1.25, distance.shape)
    )


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_nested_jvp_matches_reverse_mode_hessian_and_finite_differences(covariance):
    model = make(3, covariance=covariance, sigma=0.5)
    randomise(model)
    if covariance == "full":
        explicit_rotations(model)
    with jax.enable_x64(True):
        found = derivatives(to_float64(model), jnp.array([0.7, 0.4, 3.1]), step=1e-5)
    np.testing.assert_allclose(found["nested"], found["hessian"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(found["first"], found["central"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        np.diagonal(found["hessian"]), found["curvature"], rtol=1e-4, atol=1e-4
    )


def context() -> dict:
    lower, upper = BOXES[2]
    return {"in_dims": 2, "out_dims": 2, "lower": lower, "upper": upper, "rngs": nnx.Rngs(0)}


def test_registry_builds_it_as_a_pointwise_model():
    model = build("pig", gaussians=6, channels=3, covariance="full", **context())
    assert isinstance(model, PIG)
    assert apply(model, jnp.zeros((4, 2))).shape == (4, 2)
    assert isinstance(nnx.eval_shape(lambda: build("pig", **PIG.example(), **context())), PIG)
    assert "pig" in available("pointwise") and "pig" not in available("operator")


def test_misspelt_option_names_it():
    with pytest.raises(ModelError, match=r"has no argument 'gausians' \(did you mean 'gaussians'"):
        build("pig", gausians=5, **context())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"covariance": "spherical"}, "covariance must be one of diagonal, full"),
        ({"sigma": 0.0}, "sigma must be positive"),
        ({"margin": 0.0}, "margin must be positive"),
        ({"gaussians": 0}, "gaussians must be at least 1"),
    ],
)
def test_bad_options_are_model_errors(options, match):
    with pytest.raises(ModelError, match=match):
        build("pig", **options, **context())


def test_full_covariance_beyond_three_coordinates_is_a_model_error():
    with pytest.raises(ModelError, match="supports 1 to 3 coordinates, not 4"):
        PIG(4, 1, (0.0,) * 4, (1.0,) * 4, covariance="full", rngs=nnx.Rngs(0))


def test_fits_a_sine():
    model = PIG(1, 1, (-1.0,), (1.0,), gaussians=16, sigma=0.2, rngs=nnx.Rngs(0))
    # Seeds 0-3 reach 8e-4 to 4e-3.
    assert fit(model, steps=1000, learning_rate=2e-2) < 1e-2
