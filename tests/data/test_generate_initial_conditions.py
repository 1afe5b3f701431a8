"""PDEBench's sum-of-sines initial conditions: formula, distribution, reproducibility."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from surrogates.data.generate.initial_conditions import normalise_unit_range, sample_sum_of_sines

X = (np.arange(256) + 0.5) / 256 * 2.0 - 1.0  # cell centres of [-1, 1)


def by_hand(ic, x: np.ndarray) -> np.ndarray:
    """The documented formula evaluated in NumPy from the sampled parameters."""
    p = {name: np.asarray(getattr(ic, name), np.float64) for name in ic.__dataclass_fields__}
    u = np.einsum(
        "bk,bkn->bn",
        p["amplitude"],
        np.sin(p["wavenumber"][..., None] * x + p["phase"][..., None]),
    )
    u = np.where(p["absolute"][:, None] > 0, np.abs(u), u) * p["sign"][:, None]
    left, right, width = (p[k][:, None] for k in ("left", "right", "width"))
    mask = 0.5 * (np.tanh((x - left) / width) - np.tanh((x - right) / width))
    return np.where(p["window"][:, None] > 0, u * mask, u)


def test_values_follow_the_formula():
    ic = sample_sum_of_sines(5, np.arange(40), x_min=-1.0, length=2.0, p_abs=0.5, p_window=0.5)
    np.testing.assert_allclose(np.asarray(ic(X)), by_hand(ic, X), atol=1e-5)


def test_harmonics_and_multiplicities_are_pdebench_s():
    ic = sample_sum_of_sines(1, np.arange(500), x_min=-1.0, length=2.0, modes=4, choices=2)
    harmonic = np.asarray(ic.wavenumber) * 2.0 / (2 * np.pi)  # n * m_n
    n = np.arange(1, 5)
    multiplicity = harmonic / n
    np.testing.assert_allclose(multiplicity, np.round(multiplicity), atol=1e-5)
    # Two draws with replacement: the multiplicities add up to 2, and one harmonic drawn twice
    # (probability 1/4 with 4 harmonics) shows up as a doubled wavenumber.
    np.testing.assert_allclose(multiplicity.sum(axis=1), 2.0, atol=1e-5)
    twice = np.mean(np.isclose(multiplicity, 2.0).any(axis=1))
    assert abs(twice - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 500)
    assert np.all((ic.amplitude >= 0) & (ic.amplitude <= 1))
    assert np.all((ic.phase >= 0) & (ic.phase <= 2 * np.pi))


def test_flags_occur_at_their_probabilities_and_windows_sit_inside_the_domain():
    count = 4000
    ic = sample_sum_of_sines(2, np.arange(count), x_min=-1.0, length=2.0)
    for flag, p in ((ic.absolute, 0.1), (ic.window, 0.1), (ic.sign > 0, 0.5)):
        assert abs(np.mean(flag) - p) < 5 * np.sqrt(p * (1 - p) / count)
    left, right = np.asarray(ic.left), np.asarray(ic.right)
    assert np.all((left >= -1 + 0.2) & (left <= -1 + 0.9))
    assert np.all((right >= -1 + 1.1) & (right <= -1 + 1.8))
    np.testing.assert_allclose(ic.width, 0.02)


def test_a_sample_does_not_depend_on_its_batch():
    whole = sample_sum_of_sines(9, np.arange(10), x_min=0.0, length=1.0)(X)
    alone = sample_sum_of_sines(9, np.array([7, 3]), x_min=0.0, length=1.0)(X)
    np.testing.assert_array_equal(np.asarray(alone), np.asarray(whole)[[7, 3]])
    other_seed = sample_sum_of_sines(10, np.arange(10), x_min=0.0, length=1.0)(X)
    assert not np.allclose(other_seed, whole)


def test_unwindowed_conditions_are_periodic():
    ic = sample_sum_of_sines(4, np.arange(20), x_min=-1.0, length=2.0, p_window=0.0)
    np.testing.assert_allclose(np.asarray(ic(X + 2.0)), np.asarray(ic(X)), atol=2e-5)


def test_normalise_unit_range():
    u = jnp.asarray([[1.0, 3.0, 2.0], [-4.0, -2.0, -3.0], [5.0, 5.0, 5.0]])
    expected = [[0.0, 1.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(normalise_unit_range(u), expected)
