"""The XOR study against a hand-written NumPy backpropagation of the same 2-2-1 network, and
the two training styles (scalar graphs, one batched graph) against each other."""

import numpy as np
import pytest

from diffkit.experiments import xor

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
T = np.array([0.0, 1.0, 1.0, 0.0])


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_descent(params, epochs, lr=0.1):
    """Full-batch gradient descent on sum (y - t)^2, backpropagation written out by hand."""
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = params
    for _ in range(epochs):
        h1 = _sigmoid(X[:, 0] * w1 + X[:, 1] * w2 + b1)
        h2 = _sigmoid(X[:, 0] * w3 + X[:, 1] * w4 + b2)
        y = _sigmoid(w5 * h1 + w6 * h2 + b3)
        dz = 2 * (y - T) * y * (1 - y)
        dz1 = dz * w5 * h1 * (1 - h1)
        dz2 = dz * w6 * h2 * (1 - h2)
        grads = (
            np.sum(dz1 * X[:, 0]), np.sum(dz1 * X[:, 1]), np.sum(dz2 * X[:, 0]),
            np.sum(dz2 * X[:, 1]), np.sum(dz * h1), np.sum(dz * h2), np.sum(dz1),
            np.sum(dz2), np.sum(dz),
        )
        w1, w2, w3, w4, w5, w6, b1, b2, b3 = (
            p - lr * g for p, g in zip((w1, w2, w3, w4, w5, w6, b1, b2, b3), grads)
        )
    return np.array([w1, w2, w3, w4, w5, w6, b1, b2, b3])


def test_initial_parameters_are_seeded_normal_draws():
    assert xor.initial_parameters(5) == tuple(np.random.default_rng(5).normal(size=9))
    assert xor.initial_parameters(5) != xor.initial_parameters(6)


@pytest.mark.parametrize("train", [xor.train_scalar, xor.train_batched])
def test_training_matches_hand_written_backprop(train):
    init = xor.initial_parameters(3)
    final, losses, checkpoints = train(init, epochs=1500)
    assert np.allclose(final, numpy_descent(init, 1500), rtol=1e-11, atol=1e-12)
    assert checkpoints[0] == init
    assert len(losses) == 15 and losses[-1] < losses[0]


def test_styles_follow_one_trajectory():
    result = xor.train_seed(1, epochs=3000)
    assert result["trajectory_max_diff"] < 1e-9
    scalar, batched = result["runs"]
    assert np.allclose(scalar["loss_curve"], batched["loss_curve"], rtol=1e-9, atol=1e-12)


def test_outputs_loss_and_solved():
    params = tuple(numpy_descent(xor.initial_parameters(3), 30_000))
    outs = xor.outputs(params)
    h1 = _sigmoid(X @ np.array(params[0:2]) + params[6])
    h2 = _sigmoid(X @ np.array(params[2:4]) + params[7])
    y = _sigmoid(params[4] * h1 + params[5] * h2 + params[8])
    assert np.allclose([outs[k] for k in ("00", "01", "10", "11")], y, rtol=1e-14)
    assert np.isclose(xor.summed_loss(params), np.sum((y - T) ** 2), rtol=1e-13)
    assert xor.solved(outs)
    assert not xor.solved({"00": 0.01, "01": 0.98, "10": 0.5, "11": 0.5})


def test_run_keys_and_workers_do_not_change_results():
    one = xor.run(seeds=2, epochs=300, workers=1)
    two = xor.run(seeds=2, epochs=300, workers=2)
    assert {k: v for k, v in one.items() if k != "timing"} == {
        k: v for k, v in two.items() if k != "timing"
    }
    assert set(one) >= {"runs", "success_rate"}
    assert [(r["style"], r["seed"]) for r in one["runs"]] == [
        ("scalar", 0), ("batched", 0), ("scalar", 1), ("batched", 1)
    ]
    for run in one["runs"]:
        assert set(run) >= {"style", "seed", "epochs", "lr", "final_loss", "outputs", "solved"}
        assert set(run["outputs"]) == {"00", "01", "10", "11"}
        assert run["epochs"] == 300 and run["lr"] == 0.1
    assert one["success_rate"] == sum(r["solved"] for r in one["runs"]) / 4
