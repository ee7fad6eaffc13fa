"""Simple RNN cell: a known answer worked out by hand from the two-step example of seeds/004."""
import math

import numpy as np

from reference import model
from reference.spec import Batch, SequenceSpec

# seeds/004 (TensorFlow实战): X = [1, 2] (garbled to [0.0] in our copy), state starts at [0, 0].
W_STATE = [[0.1, 0.2], [0.3, 0.4]]
W_INPUT = [0.5, 0.6]
B_CELL = [0.1, -0.1]
W_OUTPUT = [1.0, 2.0]
B_OUTPUT = 0.1
# What the tutorial prints, to its 8 significant digits.
PRINTED_STATES = [[0.53704957, 0.46211716], [0.85973818, 0.88366641]]
PRINTED_OUTPUTS = [1.56128388, 2.72707101]

SPEC = SequenceSpec("seed004", input_size=1, hidden_size=2, output_size=1, return_sequences=True)
PARAMS = {
    "rnn/0/fw/kernel": np.array([W_INPUT]),
    "rnn/0/fw/recurrent_kernel": np.array(W_STATE),
    "rnn/0/fw/bias": np.array(B_CELL),
    "head/kernel": np.array([[w] for w in W_OUTPUT]),
    "head/bias": np.array([B_OUTPUT]),
}


def _by_hand(xs: list[float]) -> tuple[list[list[float]], list[float], dict]:
    """Scalar arithmetic, no NumPy: forward, then dL/d(params) for L = mean over steps of y_t^2."""
    s, states, outs = [0.0, 0.0], [], []
    for x in xs:
        pre = [s[0] * W_STATE[0][j] + s[1] * W_STATE[1][j] + x * W_INPUT[j] + B_CELL[j] for j in range(2)]
        s = [math.tanh(p) for p in pre]
        states.append(s)
        outs.append(s[0] * W_OUTPUT[0] + s[1] * W_OUTPUT[1] + B_OUTPUT)
    n = len(xs)
    g = {"W_STATE": [[0.0, 0.0], [0.0, 0.0]], "W_INPUT": [0.0, 0.0], "B_CELL": [0.0, 0.0],
         "W_OUTPUT": [0.0, 0.0], "B_OUTPUT": 0.0}
    dh_next = [0.0, 0.0]
    for t in reversed(range(n)):
        dy = 2.0 * outs[t] / n
        g["B_OUTPUT"] += dy
        for j in range(2):
            g["W_OUTPUT"][j] += dy * states[t][j]
        dh = [dy * W_OUTPUT[j] + dh_next[j] for j in range(2)]
        dz = [dh[j] * (1.0 - states[t][j] ** 2) for j in range(2)]
        prev = states[t - 1] if t > 0 else [0.0, 0.0]
        for j in range(2):
            g["B_CELL"][j] += dz[j]
            g["W_INPUT"][j] += dz[j] * xs[t]
            for i in range(2):
                g["W_STATE"][i][j] += prev[i] * dz[j]
        dh_next = [sum(dz[j] * W_STATE[i][j] for j in range(2)) for i in range(2)]
    return states, outs, g


def test_forward_matches_the_tutorials_printed_numbers() -> None:
    batch = Batch(np.array([[[1.0], [2.0]]]), np.zeros((1, 2, 1)), np.zeros((1, 2)))
    results = model.evaluate(SPEC, PARAMS, batch)
    np.testing.assert_allclose(results["output"]["hidden"][0], PRINTED_STATES, rtol=0, atol=5e-9)
    np.testing.assert_allclose(results["output"]["prediction"][0, :, 0], PRINTED_OUTPUTS, rtol=0, atol=5e-9)


def test_forward_and_gradients_match_hand_arithmetic() -> None:
    states, outs, g = _by_hand([1.0, 2.0])
    batch = Batch(np.array([[[1.0], [2.0]]]), np.zeros((1, 2, 1)), np.zeros((1, 2)))
    results = model.evaluate(SPEC, PARAMS, batch)
    grads = results["gradient"]
    # Same operations in float64 on both sides, summed in a different order: a few ulp.
    tol = {"rtol": 1e-14, "atol": 1e-15}
    np.testing.assert_allclose(results["output"]["hidden"][0], states, **tol)
    np.testing.assert_allclose(results["output"]["prediction"][0, :, 0], outs, **tol)
    np.testing.assert_allclose(grads["rnn/0/fw/recurrent_kernel"], g["W_STATE"], **tol)
    np.testing.assert_allclose(grads["rnn/0/fw/kernel"][0], g["W_INPUT"], **tol)
    np.testing.assert_allclose(grads["rnn/0/fw/bias"], g["B_CELL"], **tol)
    np.testing.assert_allclose(grads["head/kernel"][:, 0], g["W_OUTPUT"], **tol)
    np.testing.assert_allclose(grads["head/bias"], [g["B_OUTPUT"]], **tol)
