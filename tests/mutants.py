"""Verdict quality: a catalog of bugs a porter or an adapter writer makes, each run through ``compare``.

A mutant is one textual change of the shipped code (an adapter, a layout table or the reference),
applied to a copy of the repository, and a ``compare`` run that should expose it. Each entry states
what a trustworthy verdict says about it: the exit code (1 for every behaviour-changing mutant),
which side is wrong (``blame``: a framework, or "reference" when every framework agrees with each
other and not with the reference), and the words of the diagnosis that names the bug. The catalog
is data: add an entry, and ``python tests/mutate_traps.py --verdicts`` measures it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPY = ("adapters", "reference", "verify", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    id: str
    bug: str                    # what a person did wrong, in their words
    file: str                   # relative to the repository root
    old: str                    # text that must occur exactly once in ``file``
    new: str
    model: str                  # a built-in model (``python -m verify list``) or ``random:SEED``
    frameworks: str             # comma-separated, as ``--frameworks`` takes them ("": all the model has)
    blame: str                  # the side the report must find wrong: a framework, or "reference"
    diagnosis: str = ""         # words the report's notes or a failing check's diagnosis must contain ("" = none)
    dtype: str = "float64"
    seed: int = 0
    exit: int = 1               # 0 for a mutant that changes the text but not what is computed


def _command(m: Mutant, json_path: str) -> list[str]:
    model = ["--model", "random", "--seed", m.model.split(":")[1]] if m.model.startswith("random:") else \
        ["--model", m.model, "--seed", str(m.seed)]
    frameworks = ["--frameworks", m.frameworks] if m.frameworks else []  # "": every framework the model has
    return [sys.executable, "-m", "verify", "compare", *model, *frameworks, "--dtype", m.dtype, "--quiet",
            "--json", json_path]


def prepare(tmp: Path, m: Mutant | None) -> None:
    """A copy of the code in ``tmp`` with the mutation applied (``None``: the shipped code)."""
    for name in COPY:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp / name)
    if m is None:
        return
    target = tmp / m.file
    source = target.read_text()
    if source.count(m.old) != 1:
        raise ValueError(f"mutant {m.id}: {m.file} contains the text to replace {source.count(m.old)} times, "
                         f"expected once; update tests/mutants.py")
    target.write_text(source.replace(m.old, m.new))


def run(tmp: Path, m: Mutant) -> dict:
    """Run ``compare`` on the copy in ``tmp``; the outcome, judged against the entry's expectations."""
    json_path = str(tmp / "report.json")
    env = {**os.environ, "PYTHONPATH": str(tmp)}  # the copy, not the installed checkout
    proc = subprocess.run(_command(m, json_path), cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads(Path(json_path).read_text()) if Path(json_path).exists() else {}
    return judge(m, proc.returncode, report, proc.stdout + proc.stderr)


def judge(m: Mutant, code: int, report: dict, output: str) -> dict:
    failures = [c for c in report.get("checks", []) if not c["ok"]]
    notes = report.get("notes", [])
    blamed = _blamed(failures, notes)
    words = " ".join(notes + [c.get("diagnosis") or "" for c in failures])
    return {"id": m.id, "exit": code, "caught": code == m.exit, "blamed": blamed,
            "localised": blamed == (m.blame or None),
            "diagnosed": bool(m.diagnosis) and re.search(re.escape(m.diagnosis) + r"(?!\d)", words) is not None, "expects_diagnosis": bool(m.diagnosis),
            "first": _first(failures), "notes": notes, "output_tail": output[-2000:], "mutant": asdict(m)}


def _blamed(failures: list[dict], notes: list[str]) -> str | None:
    """The side the report finds wrong: the reference when it says so, else the one framework that fails
    against the reference (None when none or several do)."""
    if any("reference is the odd one out" in n for n in notes):
        return "reference"
    sides = {c["framework"] for c in failures if "~" not in c["framework"]}
    return sides.pop() if len(sides) == 1 else None


def _first(failures: list[dict]) -> str:
    if not failures:
        return ""
    c = failures[0]
    where = f" step {c['first_bad_step']}" if c.get("first_bad_step") is not None else ""
    gate = f" gate {','.join(c['bad_gates'])}" if c.get("bad_gates") else ""
    return f"{c['framework']} vs {c['against']}: {c['quantity']} {c['name']}{where}{gate}"


def _swap(text: str, a: str, b: str) -> str:
    return text.replace(a, "\0").replace(b, a).replace("\0", b)


MUTANTS: tuple[Mutant, ...] = ()  # filled below, grouped by where the bug sits

_TS, _KS = "adapters/torch_seq2seq.py", "adapters/keras_seq2seq.py"
# The recomputation article's models (trained, then verified): the first divergent step names the bug's place.
SEQ2SEQ = (
    Mutant("torch_tf1lstm_forget_bias_dropped", "BasicLSTMCell's forget_bias left out of the forget gate", _TS,
           "c = c * torch.sigmoid(f + self.forget_bias)", "c = c * torch.sigmoid(f)", "attention_lstm", "torch",
           "torch", "output encoder step 1"),  # c starts at zero: the forget gate first matters at step 1
    Mutant("torch_tf1lstm_output_gate_tanh", "output gate through tanh instead of sigmoid", _TS,
           "h = torch.tanh(c) * torch.sigmoid(o)", "h = torch.tanh(c) * torch.tanh(o)", "attention_lstm", "torch",
           "torch", "output encoder step 0"),
    Mutant("torch_tf1lstm_gates_j_f_swapped", "TF1's i, j, f, o split as i, f, j, o", _TS,
           "i, j, f, o = super().forward(torch.cat([x, h], dim=-1)).chunk(4, dim=-1)",
           "i, f, j, o = super().forward(torch.cat([x, h], dim=-1)).chunk(4, dim=-1)", "attention_lstm", "torch",
           "torch", "output encoder step 0"),
    Mutant("torch_attention_query_reads_h_c", "the attention query reads [h, c] where TF1 flattens (c, h)", _TS,
           "attns = self.attention(torch.cat(s, -1), window)", "attns = self.attention(torch.cat(s[::-1], -1), window)",
           "attention_lstm", "torch", "torch", "output encoder step 1"),  # step 0 attends over an empty window
    # attention is a softmax-weighted sum over the window's positions, so their order changes no output;
    # only the window itself, a state the model hands back, is in another order
    Mutant("torch_attention_window_pushed_front", "the new output pushed at the front of the window", _TS,
           "torch.cat([window[:, 1:], out[:, None]], 1))", "torch.cat([out[:, None], window[:, :-1]], 1))",
           "attention", "torch", "torch"),
    Mutant("torch_loss_summed", "the article's loss summed over the batch instead of averaged", _TS,
           "loss = -(torch.log(torch.clamp(p, 1e-10, 1.0)) * targets).sum(-1).mean()",
           "loss = -(torch.log(torch.clamp(p, 1e-10, 1.0)) * targets).sum(-1).sum()", "seq2seq", "torch", "torch",
           "torch: training leaves the policy at step 0"),
    Mutant("torch_sgd_momentum", "the optimiser built with momentum 0.9 where plain SGD was meant",
           "adapters/torch_optim.py",
           "opt = torch.optim.SGD(params, lr=lr, weight_decay=wd)",
           "opt = torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=0.9)", "seq2seq",
           "torch", "torch", "torch: training leaves the policy at step 1"),  # momentum's first step is plain SGD
    Mutant("keras_tf1lstm_forget_bias_dropped", "BasicLSTMCell's forget_bias left out of the forget gate", _KS,
           "c = c * ops.sigmoid(f + self.forget_bias)", "c = c * ops.sigmoid(f)", "attention_lstm", "tensorflow",
           "tensorflow", "output encoder step 1"),
    Mutant("keras_tf1lstm_output_gate_tanh", "output gate through tanh instead of sigmoid", _KS,
           "h = ops.tanh(c) * ops.sigmoid(o)", "h = ops.tanh(c) * ops.tanh(o)", "attention_lstm", "tensorflow",
           "tensorflow", "output encoder step 0"),
    Mutant("keras_rnn_cell_relu", "BasicRNNCell built with relu instead of tanh", _KS,
           "h = ops.tanh(ops.matmul(ops.concatenate([x, state[0]], axis=-1), self.kernel) + self.bias)",
           "h = ops.relu(ops.matmul(ops.concatenate([x, state[0]], axis=-1), self.kernel) + self.bias)", "seq2seq",
           "tensorflow", "tensorflow", "output encoder step 0"),
    Mutant("keras_attention_softmax_over_features", "attention weights normalised over the wrong axis", _KS,
           "alpha = ops.softmax(e, axis=-1)", "alpha = ops.softmax(e, axis=0)", "attention", "tensorflow",
           "tensorflow", "output encoder step 1"),
    Mutant("keras_bidirectional_backward_not_reversed", "the backward cell run over the sequence forwards", _KS,
           "for t in reversed(range(spec.input_steps)):\n                    h, state = self.bw(x[:, t], state)",
           "for t in range(spec.input_steps):\n                    h, state = self.bw(x[:, t], state)",
           "bidirectional_classifier", "tensorflow", "tensorflow", "output backward step 0"),
)
MUTANTS += SEQ2SEQ

_NN, _TST, _KST, _TAB = "adapters/torch_nn.py", "adapters/torch_stack.py", "adapters/keras_stack.py", "adapters/tables.py"
_T1T, _T1C = "adapters/tf1_tables.py", "adapters/tf1_cells.py"
HARD = "bidirectional_stacked_hard"  # the zoo's torch loop of ops (hard_sigmoid), two bidirectional layers
# Layer stacks: the diagnosis (verify/hypotheses.py) must name the bug, at the right layer and gates.
STACK = (
    Mutant("torch_gru_gate_order_not_permuted", "torch's GRU gates r, z, n taken as the canonical z, r, h", _TAB,
           "_SWAP01 = (1, 0, 2)", "_SWAP01 = (0, 1, 2)", "gru", "torch", "torch", "gates z and r swapped in `rnn/0/fw`"),
    Mutant("torch_rnn_recurrent_kernel_not_transposed", "torch's weight_hh copied without the transpose", _TAB,
           'TORCH_RNN = (\n    TensorMap("kernel", ("weight_ih_l{layer}{suffix}",), "transpose"),\n'
           '    TensorMap("recurrent_kernel", ("weight_hh_l{layer}{suffix}",), "transpose"),',
           'TORCH_RNN = (\n    TensorMap("kernel", ("weight_ih_l{layer}{suffix}",), "transpose"),\n'
           '    TensorMap("recurrent_kernel", ("weight_hh_l{layer}{suffix}",), "identity"),',
           "rnn", "torch", "torch", "the recurrent kernel of `rnn/0/fw` used transposed"),
    Mutant("torch_second_bias_not_read", "an extractor that reads bias_ih and ignores bias_hh", _TAB,
           "value = sum(np.asarray(tensors[n], dtype=np.float64) for n in present)",
           "value = np.asarray(tensors[present[0]], dtype=np.float64)", "lstm", "torch", "torch"),
    Mutant("keras_lstm_gates_f_c_swapped", "Keras's i, f, c, o read as i, c, f, o", _TAB,
           "KERAS_LSTM = KERAS_SIMPLE_RNN",
           'KERAS_LSTM = tuple(TensorMap(m.canonical, m.framework, "swap_fg") for m in KERAS_SIMPLE_RNN)\n'
           'TRANSFORMS["swap_fg"] = (lambda a: permute_blocks(a, (0, 2, 1, 3)),) * 2', "lstm", "tensorflow",
           "tensorflow", "gates f and g swapped in `rnn/0/fw`"),
    Mutant("tf1_lstm_i_j_f_o_read_as_i_f_g_o", "TF1's i, j, f, o read in the canonical order", _T1T,
           '("kernel", 0, 4), ("kernel", 2, 4), ("kernel", 1, 4), ("kernel", 3, 4))',
           '("kernel", 0, 4), ("kernel", 1, 4), ("kernel", 2, 4), ("kernel", 3, 4))', "lstm", "tf1", "tf1",
           "gates f and g swapped in `rnn/0/fw`"),
    # the bias row of the table is right: only the kernels' blocks are exchanged
    Mutant("tf1_gru_r_u_read_as_z_r", "TF1's GRUCell gates r, u read as z, r in the kernel table", _T1T,
           '_GRU_BLOCKS = (("gates/kernel", 1, 2), ("gates/kernel", 0, 2),',
           '_GRU_BLOCKS = (("gates/kernel", 0, 2), ("gates/kernel", 1, 2),', "gru_reset_before", "tf1", "tf1",
           "gates z and r swapped in the kernels of `rnn/0/fw` only"),
    Mutant("tf1_forget_bias_added", "BasicLSTMCell left at its default forget_bias 1.0", _T1C,
           "r.BasicLSTMCell(spec.hidden_size, forget_bias=spec.forget_bias,",
           "r.BasicLSTMCell(spec.hidden_size, forget_bias=1.0,", "lstm", "tf1", "tf1", "shifted by +1"),
    Mutant("torch_loop_hard_sigmoid_keras2", "torch's hard_sigmoid written as Keras 2's 0.2 x + 0.5", _NN,
           '"hard_sigmoid": lambda z: torch.clamp(z + 3.0, 0.0, 6.0) / 6.0,',
           '"hard_sigmoid": lambda z: torch.clamp(0.2 * z + 0.5, 0.0, 1.0),', HARD, "torch", "torch",
           "recurrent_activation hard_sigmoid as Keras 2 defined it"),
    Mutant("torch_loop_hard_sigmoid_unclipped", "hard_sigmoid without its clip", _NN,
           '"hard_sigmoid": lambda z: torch.clamp(z + 3.0, 0.0, 6.0) / 6.0,',
           '"hard_sigmoid": lambda z: (z + 3.0) / 6.0,', HARD, "torch", "torch"),
    Mutant("torch_loop_output_gate_tanh", "the output gate through the cell activation", _NN,
           "a(z[:, 2 * n:3 * n]), sg(z[:, 3 * n:])", "a(z[:, 2 * n:3 * n]), a(z[:, 3 * n:])", HARD, "torch", "torch",
           "gate o of `rnn/0` and `rnn/1` alike through tanh"),
    Mutant("torch_loop_input_forget_swapped", "input and forget gates used the other way round", _NN,
           "c = f * state[1] + i * gg", "c = i * state[1] + f * gg", HARD, "torch", "torch",
           "gates i and f swapped in `rnn/0/fw`, `rnn/0/bw`, `rnn/1/fw` and `rnn/1/bw` alike"),
    Mutant("torch_loop_gru_reset_after_the_matmul", "GRU reset applied after the recurrent product", _NN,
           "nn_ = a(xw[:, 2 * n:] + (r * h_prev) @ w_hh[2 * n:].T)",
           "nn_ = a(xw[:, 2 * n:] + r * (h_prev @ w_hh[2 * n:].T))", "gru_reset_before", "torch", "torch",
           "the reset gate of `rnn/0` applied after the recurrent matmul"),
    Mutant("torch_loop_gru_update_inverted", "GRU update gate used the other way round", _NN,
           "return ((1 - z) * nn_ + z * h_prev,)", "return (z * nn_ + (1 - z) * h_prev,)", "gru_reset_before",
           "torch", "torch", "the update gate of `rnn/0` used the other way round"),
    Mutant("torch_loop_backward_input_not_flipped", "the backward direction fed the sequence in input order", _NN,
           'xs = torch.flip(seq, dims=(1,)) if d == "bw" else seq', "xs = seq", HARD, "torch", "torch",
           "reversed twice"),
    Mutant("torch_loop_backward_output_not_realigned", "the backward outputs left in processing order", _NN,
           'outs[d] = torch.flip(out, dims=(1,)) if d == "bw" else out', "outs[d] = out", HARD, "torch", "torch",
           "left in processing order"),
    Mutant("torch_loop_initial_h_c_exchanged", "(h, c) passed as (c, h)", _NN,
           "state = tuple(states[n] for n in names)", "state = tuple(states[n] for n in names[::-1])", HARD, "torch",
           "torch", "(h, c) read as (c, h)"),
    Mutant("torch_loop_final_h_c_exchanged", "the final state handed back as (c, h)", _NN,
           "finals.update(zip(names, state))", "finals.update(zip(names, state[::-1]))", HARD, "torch", "torch",
           "returned as (c, h)"),
    Mutant("torch_last_output_semantics", "the backward last output taken after its first step (TF1's)", _TST,
           'bw[:, 0 if top.last_output == "final" else -1]', 'bw[:, -1 if top.last_output == "final" else 0]',
           "bidirectional", "torch", "torch", "the last output of `rnn/0` taken as"),
    Mutant("torch_mse_summed", "MSELoss(reduction='sum')", _NN, "loss = f.mse_loss(y, targets)",
           "loss = f.mse_loss(y, targets, reduction='sum')", "lstm", "torch", "torch",
           "instead of averaged"),
    Mutant("keras_initial_states_exchanged", "Keras fed its initial state as [c, h]", _KST,
           "initial_state=[states0[n] for n in names]", "initial_state=[states0[n] for n in names[::-1]]", "lstm",
           "tensorflow", "tensorflow", "(h, c) read as (c, h)"),
    Mutant("keras_initial_states_dropped", "Keras called without its initial state", _KST,
           "initial_state=[states0[n] for n in names]", "initial_state=None", "lstm", "tensorflow", "tensorflow",
           "ignored"),
    Mutant("keras_recurrent_activation_default", "Keras layers built with the default recurrent activation", _KST,
           'opts["recurrent_activation"] = keras3._activation(layer.recurrent_activation)',
           'opts["recurrent_activation"] = "sigmoid"', HARD, "tensorflow", "tensorflow", "recurrent_activation sigmoid"),
    Mutant("keras_go_backwards_flipped", "a forward layer built with go_backwards", _KST,
           '"go_backwards": layer.go_backwards}', '"go_backwards": not layer.go_backwards}', "lstm", "tensorflow",
           "tensorflow", "`rnn/0` run"),
    Mutant("keras_mse_summed", "Keras's squared error summed over the elements", _KST,
           "loss = keras.losses.MeanSquaredError(dtype=y.dtype)(targets, y)",
           'loss = keras.losses.MeanSquaredError(dtype=y.dtype, reduction="sum")(targets, y)', "gru", "tensorflow",
           "tensorflow", "instead of averaged"),
)
MUTANTS += STACK

_ODD = "the reference is the odd one out"
# The reference itself: every framework agrees with every other, and the report must say the reference is wrong.
REFERENCE = (
    Mutant("reference_lstm_input_forget_swapped", "the reference's cell update with i and f exchanged",
           "reference/lstm.py", "c = f * c_prev + i * g", "c = i * c_prev + f * g", "lstm", "tensorflow,torch",
           "reference", _ODD),
    Mutant("reference_lstm_forget_gradient", "the forget gate's backward through the input gate's derivative",
           "reference/lstm.py", "dzf = dc * c_prev * ds_f(f)", "dzf = dc * c_prev * ds_f(i)", "lstm",
           "tensorflow,torch", "reference", _ODD),
    Mutant("reference_gru_reset_placement", "the reference's GRU forward with the reset placement flipped",
           "reference/gru.py", "    if spec.reset_after:\n        hu = h_prev @ u  # (B, 3H)",
           "    if not spec.reset_after:\n        hu = h_prev @ u  # (B, 3H)", "gru_reset_before", "tensorflow,torch",
           "reference", _ODD),
    Mutant("reference_hard_sigmoid_keras2", "Keras 3's hard_sigmoid defined as Keras 2's", "reference/activations.py",
           '"hard_sigmoid": (lambda z: np.clip(z + 3.0, 0.0, 6.0) / 6.0,',
           '"hard_sigmoid": (lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0),', HARD, "tensorflow,torch", "reference", _ODD),
    Mutant("reference_mse_gradient_halved", "the squared error's gradient without its factor 2",
           "reference/losses.py", "return np.mean(diff * diff), 2.0 * diff / diff.size",
           "return np.mean(diff * diff), diff / diff.size", "rnn", "tensorflow,torch", "reference", _ODD),
    Mutant("reference_softmax_ce_gradient_not_averaged", "cross-entropy's gradient summed where the loss averages",
           "reference/losses.py", "dz /= labels.size", "dz /= 1.0",
           "bidirectional", "tensorflow,torch", "reference", _ODD),
    Mutant("reference_dense_bias_gradient_first_row", "the Dense bias gradient taken from the first example only",
           "reference/stack.py", 'grads[f"{layer.name}/bias"] = dz.reshape(-1, kernel.shape[1]).sum(axis=0)',
           'grads[f"{layer.name}/bias"] = dz.reshape(-1, kernel.shape[1])[0]', "stacked", "tensorflow,torch",
           "reference", _ODD),
)
MUTANTS += REFERENCE

MORE = (
    Mutant("keras_attention_query_reads_h_c", "the attention query reads [h, c] where TF1 flattens (c, h)", _KS,
           "attns = self.attention(ops.concatenate(list(s), axis=-1) if len(s) > 1 else s[0], window)",
           "attns = self.attention(ops.concatenate(list(s)[::-1], axis=-1) if len(s) > 1 else s[0], window)",
           "attention_lstm", "tensorflow", "tensorflow", "output encoder step 1"),
    Mutant("keras_loss_summed", "the article's loss summed over the batch instead of averaged", _KS,
           "loss = -ops.mean(ops.sum(ops.log(ops.clip(p, 1e-10, 1.0)) * targets, axis=-1))",
           "loss = -ops.sum(ops.sum(ops.log(ops.clip(p, 1e-10, 1.0)) * targets, axis=-1))", "attention", "tensorflow",
           "tensorflow", "tensorflow: training leaves the policy at step 0"),
    Mutant("keras_sgd_learning_rate_slip", "a learning rate one part in 1e6 off", "adapters/keras_optim.py",
           "common = dict(learning_rate=float(lr), weight_decay=wd,",
           "common = dict(learning_rate=float(lr) * (1 + 1e-6), weight_decay=wd,",
           "seq2seq", "tensorflow", "tensorflow", "tensorflow: training leaves the policy at step 0"),
    Mutant("torch_bidirectional_backward_not_reversed", "the backward cell run over the sequence forwards", _TS,
           "for t in reversed(range(spec.input_steps)):\n                    h, state = self.bw(x[:, t], state)",
           "for t in range(spec.input_steps):\n                    h, state = self.bw(x[:, t], state)",
           "bidirectional_classifier", "torch", "torch", "output backward step 0"),
    Mutant("torch_bidirectional_keras_last_output", "Keras's last backward output where TF1's was meant", _TS,
           "last_bw = bw[-1] if self.variant == \"whole_backward\" else bw[0]",
           "last_bw = bw[-1]", "bidirectional_classifier", "torch", "torch",
           "torch: training leaves the policy at step 0"),  # only the logits read the last output: no time axis
    Mutant("reference_simple_rnn_no_recurrence", "the reference's simple RNN step ignores its state",
           "reference/simple_rnn.py", 'h = f(xw_t + h_prev @ params["recurrent_kernel"])  # (B, H)',
           'h = f(xw_t + 0.0 * h_prev @ params["recurrent_kernel"])  # (B, H)', "rnn", "tensorflow,torch",
           "reference", _ODD),
    Mutant("reference_mask_ignored", "the reference's recurrent layers run padded steps as real ones",
           "reference/stack.py", "seq, states, cache = _recurrent_forward(layer, params, seq, states0, mask)",
           "seq, states, cache = _recurrent_forward(layer, params, seq, states0, None)", "random:4", "",
           "reference", _ODD),
)
MUTANTS += MORE
