"""The reference for the article's models: hand-written gradients against finite differences,
the article's own NumPy code, TF1's bidirectional last-output semantics, and layout errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import seq2seq
from reference.losses import softmax
from tests.seq2seq_cases import small_case, small_spec


def _fd_gradient(spec, params, batch, decoding, name, eps=1e-6):
    g = np.zeros_like(params[name])
    for i in np.ndindex(g.shape):
        p = dict(params)
        for sign in (1, -1):
            a = params[name].copy()
            a[i] += sign * eps
            p[name] = a
            g[i] += sign * seq2seq.loss_only(spec, p, batch, decoding) / (2 * eps)
    return g


@pytest.mark.parametrize("kind,decoding", [("attention", "greedy"), ("attention", "teacher"), ("seq2seq", "greedy"),
                                           ("seq2seq", "teacher"), ("bidirectional", "greedy")])
@pytest.mark.parametrize("cell", ["simple_rnn", "lstm"])
def test_gradients_match_finite_differences(kind: str, decoding: str, cell: str) -> None:
    spec = small_spec(kind, decoding, cell=cell)
    params, batch = small_case(spec, seed=3)
    grads = seq2seq.evaluate(spec, params, batch)["gradient"]
    assert list(grads) == list(seq2seq.param_shapes(spec))
    for name in params:
        fd = _fd_gradient(spec, params, batch, decoding, name)
        assert np.max(np.abs(fd)) > 0 or kind == "bidirectional", name
        np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-8, err_msg=name)


def _examples(test):
    """VERIFY_EXAMPLES=N runs N examples instead of the profile's count."""
    n = os.environ.get("VERIFY_EXAMPLES")
    return settings(max_examples=int(n))(test) if n else test


@_examples
@given(seed=st.integers(0, 2**32 - 1), decoding=st.sampled_from(["greedy", "teacher"]),
       cell=st.sampled_from(["simple_rnn", "lstm"]))
def test_attention_gradients_on_drawn_weights(seed: int, decoding: str, cell: str) -> None:
    spec = small_spec("attention", decoding, hidden_size=2, attn_size=3, attn_vec_size=2, input_steps=3,
                      output_steps=3, attn_length=2, cell=cell)
    params, batch = small_case(spec, seed, batch=3)
    grads = seq2seq.evaluate(spec, params, batch)["gradient"]
    for name in ("encoder/attention/attn_w", "encoder/input_projection/kernel", "decoder/attention/query/kernel",
                 "output/kernel"):
        np.testing.assert_allclose(grads[name], _fd_gradient(spec, params, batch, decoding, name), rtol=1e-5,
                                   atol=1e-8, err_msg=name)


def _article_attention(param: list, x: np.ndarray, y: np.ndarray, n_hidden: int, input_digits: int,
                       output_digits: int) -> tuple[float, float]:
    """seeds/002 section 3, transcribed line for line (only ``my.`` removed)."""
    def one_hot(score):
        return np.eye(score.shape[1])[np.argmax(score, axis=1)]
    n = x.shape[0]
    w1_en, c1_en, w2_en, c2_en, attn_k, attn_v, attn_w, attn_c, w3_en, c3_en, w4_en, c4_en = param[:12]
    state = np.zeros([n, n_hidden])
    attns = np.zeros([n, n_hidden])
    attn_states = np.zeros([n, input_digits, n_hidden])

    def my_attention(state, attn_states):
        hidden_features = np.dot(attn_states, attn_k[0, 0])
        yy = np.dot(state, attn_w) + attn_c
        yy = np.expand_dims(yy, 1)
        s = np.sum(attn_v * np.tanh(hidden_features + yy), axis=2)
        a = softmax(s)
        return np.sum(np.expand_dims(a, 2) * attn_states, axis=1)

    for i in range(input_digits):
        inputs = np.dot(np.hstack((x[:, i, :], attns)), w1_en) + c1_en
        output = np.tanh(np.dot(np.hstack((inputs, state)), w2_en) + c2_en)
        state = output
        attns = my_attention(state, attn_states)
        output = np.dot(np.hstack((output, attns)), w3_en) + c3_en
        attn_states = np.hstack((attn_states[:, 1:, :], np.expand_dims(output, 1)))
    score = np.dot(output, w4_en) + c4_en
    outputs, outhots = [softmax(score)], [one_hot(score)]
    w1_de, c1_de, w2_de, c2_de, attn_k, attn_v, attn_w, attn_c, w3_de, c3_de = param[12:22]
    for i in range(1, output_digits):
        inputs = np.dot(np.hstack((outhots[-1], attns)), w1_de) + c1_de
        output = np.tanh(np.dot(np.hstack((inputs, state)), w2_de) + c2_de)
        state = output
        attns = my_attention(state, attn_states)
        output = np.dot(np.hstack((output, attns)), w3_de) + c3_de
        attn_states = np.hstack((attn_states[:, 1:, :], np.expand_dims(output, 1)))
        score = np.dot(output, w4_en) + c4_en
        outputs.append(softmax(score))
        outhots.append(one_hot(score))
    outputs = np.transpose(outputs, [1, 0, 2])
    acc = np.mean(np.equal(np.argmax(outputs, 2), np.argmax(y, 2)))
    loss = -np.mean(np.sum(np.log(np.clip(outputs, 1e-10, 1.0)) * y, axis=2))
    return float(acc), float(loss)


def test_attention_is_the_article_code_on_the_article_parameter_order() -> None:
    # the article's shapes: 12 symbols, attn_length = input_digits, attn_size = attn_vec = n_hidden
    spec = small_spec("attention", input_size=12, output_size=12, hidden_size=6, input_steps=7, output_steps=4,
                      attn_size=0, attn_vec_size=0, attn_length=0)
    params, batch = small_case(spec, seed=11, batch=9, scale=1.5)
    res = seq2seq.evaluate(spec, params, batch)
    acc, loss = _article_attention(list(params.values()), batch.inputs, batch.targets, 6, 7, 4)
    assert len(params) == 22
    assert res["accuracy"]["accuracy"] == acc
    assert abs(float(res["loss"]["loss"]) - loss) <= 1e-14 * abs(loss)


def test_seq2seq_is_the_article_code() -> None:
    spec = small_spec("seq2seq", input_size=12, output_size=12, hidden_size=6, input_steps=7, output_steps=4)
    params, batch = small_case(spec, seed=12, batch=9, scale=1.5)
    w_en, c_en, v, b, w_de, c_de = params.values()
    x, y = batch.inputs, batch.targets
    state = np.zeros([9, 6])
    for i in range(7):
        state = np.tanh(np.dot(np.hstack((x[:, i, :], state)), w_en) + c_en)
    score = np.dot(state, v) + b
    output, outhot = [softmax(score)], [np.eye(12)[np.argmax(score, axis=1)]]
    for i in range(1, 4):
        state = np.tanh(np.dot(np.hstack((outhot[-1], state)), w_de) + c_de)
        score = np.dot(state, v) + b
        output.append(softmax(score))
        outhot.append(np.eye(12)[np.argmax(score, axis=1)])
    output = np.transpose(output, [1, 0, 2])
    res = seq2seq.evaluate(spec, params, batch)
    np.testing.assert_allclose(res["output"]["prediction"], output, rtol=1e-14, atol=1e-15)
    assert res["accuracy"]["accuracy"] == np.mean(np.equal(np.argmax(output, 2), np.argmax(y, 2)))


def test_bidirectional_is_the_article_code_with_tf1_last_output() -> None:
    spec = small_spec("bidirectional", input_size=5, output_size=4, hidden_size=3, input_steps=6)
    params, batch = small_case(spec, seed=13, batch=5, scale=1.5)
    w_fw, c_fw, w_bw, c_bw, v, b = params.values()
    x = batch.inputs
    out_fw, state = [], np.zeros([5, 3])
    for i in range(6):
        state = np.tanh(np.dot(np.hstack((x[:, i, :], state)), w_fw) + c_fw)
        out_fw.append(state)
    out_bw, state = [], np.zeros([5, 3])
    for i in reversed(range(6)):
        state = np.tanh(np.dot(np.hstack((x[:, i, :], state)), w_bw) + c_bw)
        out_bw.append(state)
    outputs = tuple(np.hstack((f, bw)) for f, bw in zip(out_fw, reversed(out_bw)))
    score = np.dot(outputs[-1], v) + b
    res = seq2seq.evaluate(spec, params, batch)
    np.testing.assert_allclose(res["output"]["logits"], score, rtol=1e-14, atol=1e-15)
    # TF1 semantics: the backward cell reaches the classifier only through its step over the last input,
    # from a zero state, so its recurrent rows get no gradient
    assert np.all(res["gradient"]["bw/cell/kernel"][spec.input_size:] == 0)
    assert np.any(res["gradient"]["fw/cell/kernel"][spec.input_size:] != 0)


def test_teacher_forcing_feeds_the_targets_and_greedy_its_argmax() -> None:
    spec = small_spec("attention")
    params, batch = small_case(spec, seed=5)
    forced = seq2seq.evaluate(spec, params, batch.with_fed_back(np.argmax(batch.targets[:, :-1], -1)), "greedy")
    teacher = seq2seq.evaluate(spec, params, batch, "teacher")
    np.testing.assert_array_equal(forced["output"]["logits"], teacher["output"]["logits"])
    greedy = seq2seq.evaluate(spec, params, batch, "greedy")
    own = np.argmax(greedy["output"]["logits"][:, :-1], -1)
    again = seq2seq.evaluate(spec, params, batch.with_fed_back(own), "greedy")
    np.testing.assert_array_equal(again["output"]["logits"], greedy["output"]["logits"])


@pytest.mark.parametrize("kind", ["attention", "seq2seq", "bidirectional"])
def test_wrong_layout_names_the_expected_layout(kind: str) -> None:
    spec = small_spec(kind)
    params, batch = small_case(spec, seed=1)
    first = next(iter(params))
    with pytest.raises(ValueError, match=rf"got {len(params) - 1} tensors, expected {len(params)}.*expected layout: "):
        seq2seq.evaluate(spec, {k: v for k, v in params.items() if k != first}, batch)
    bad = dict(params)
    bad["output/kernel"] = bad["output/kernel"].T
    with pytest.raises(ValueError, match=r"parameter output/kernel: expected shape \(\d+, 4\), got \(4, \d+\); "
                                         r"expected layout: "):
        seq2seq.evaluate(spec, bad, batch)


def test_sgd_train_is_plain_sgd_on_the_teacher_forced_loss() -> None:
    spec = small_spec("attention")
    params, batch = small_case(spec, seed=2)
    trained, losses = seq2seq.sgd_train(spec, params, [batch, batch], 0.5)
    g1 = seq2seq.evaluate(spec, params, batch, "teacher")["gradient"]
    step1 = {k: params[k] - 0.5 * g1[k] for k in params}
    g2 = seq2seq.evaluate(spec, step1, batch, "teacher")["gradient"]
    for k in params:
        np.testing.assert_array_equal(trained[k], step1[k] - 0.5 * g2[k])
    assert losses.shape == (2,) and losses[1] < losses[0]


def test_lstm_cell_is_tf1_basic_lstm_with_its_run_time_forget_bias() -> None:
    from reference import seq2seq_cell
    c_prev, h_prev = np.array([[0.8, -0.4]]), np.array([[0.3, 0.1]])
    kernel = np.zeros((3 + 2, 8))
    xw = np.zeros((1, 8))
    xw[0, 2:4] = [0.5, -1.0]  # j, the candidate; i, f, o pre-activations stay 0
    h, (c, h2), _ = seq2seq_cell.step("lstm", kernel, xw, (c_prev, h_prev), forget_bias=1.0)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    expected_c = c_prev * sig(1.0) + 0.5 * np.tanh([[0.5, -1.0]])
    np.testing.assert_allclose(c, expected_c, rtol=1e-15)
    np.testing.assert_allclose(h, np.tanh(expected_c) * 0.5, rtol=1e-15)
    assert h is h2
