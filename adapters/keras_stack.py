"""Keras adapter for layer stacks (``StackSpec``), Keras 3 or 2 (tf.keras 2.15): describe, build, read weights, run."""
from __future__ import annotations

import contextlib
import functools
import weakref
from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np

from adapters import keras3, keras_compat, keras_optim, tables
from adapters.tf_import import import_tf
from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent, check_buildable
from reference.layout import initial_state_gradient_name
from reference.spec import Batch
from reference.stack import StackSpec

FRAMEWORK = "tensorflow"
EMBEDDING = (tables.TensorMap("embeddings", ("embeddings",)),)
RECURRENT_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "hard_sigmoid")
DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")

# Models made by ``build``: the spec they were built from, so that ``extract(model)`` (the registry's
# one-argument form) names the weights after the spec's layers rather than after the Keras layer names.
_BUILT_FROM: "weakref.WeakKeyDictionary[Any, StackSpec]" = weakref.WeakKeyDictionary()
_LAST_STEP: list = []
# deliberately broken models for the verifier's own tests: "own_dropout_rng" trains with Keras's Dropout layers in
# training mode (their own random generator) instead of the masks the batches give
VARIANTS = ("", "own_dropout_rng")
_VARIANT: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def versions() -> dict[str, str]:
    return keras3.versions()


def _mask_sources(spec: StackSpec, masked: bool) -> list[bool]:
    """Per layer: whether a Keras mask can reach it (batch lengths, Masking, mask_zero; a layer that
    returns one vector per sequence ends the mask)."""
    out, live = [], masked
    for layer in spec.layers:
        if isinstance(layer, Masking) or (isinstance(layer, Embedding) and layer.mask_zero):
            live = True
        out.append(live)
        if isinstance(layer, Recurrent) and not layer.return_sequences:
            live = False
    return out


def _keras_sequences(layer: Recurrent) -> bool:
    """Whether the Keras recurrent layer returns its sequence (a bidirectional last_step reads it at [:, -1])."""
    return layer.return_sequences or (layer.bidirectional and layer.last_output == "last_step")


def _cannot_hold(spec: StackSpec) -> str | None:
    for layer in spec.recurrent_layers:
        if layer.use_peepholes or layer.proj_size or layer.forget_bias:
            return f"layer {layer.name}: Keras layers have no peepholes, projection or run-time forget_bias"
    return None


def supports(spec: StackSpec, masked: bool = False) -> str | None:
    """None when Keras can hold ``spec`` (and run it on batches with ``lengths`` when ``masked``);
    otherwise the reason it cannot. Masks from Masking or Embedding(mask_zero) count as masked."""
    reason = _cannot_hold(spec)
    if reason:
        return reason
    for layer, sees_mask in zip(spec.layers, _mask_sources(spec, masked)):
        if not (isinstance(layer, Recurrent) and layer.bidirectional and sees_mask):
            continue
        if _keras_sequences(layer) != layer.zero_output_for_mask:
            return (f"layer {layer.name}: Keras Bidirectional forces zero_output_for_mask = return_sequences "
                    f"({_keras_sequences(layer)}) on its layers, which disagrees with "
                    f"zero_output_for_mask={layer.zero_output_for_mask} on a masked batch")
    return None


def _last_step_class() -> Any:
    """A layer that keeps the last time step (x[:, -1]) and drops the mask: a bidirectional layer's
    ``last_output="last_step"``, which Keras's Bidirectional has no option for. Registered, so that a
    built model saves and loads."""
    if not _LAST_STEP:
        _, keras = import_tf()

        @keras.saving.register_keras_serializable(package="rnn_verify")
        class LastStep(keras.layers.Layer):
            def call(self, x: Any) -> Any:
                return x[:, -1]

            def compute_mask(self, x: Any, mask: Any = None) -> Any:
                return None  # one vector per sequence: nothing left to mask

            def compute_output_shape(self, shape: tuple) -> tuple:
                return (shape[0],) + tuple(shape[2:])
        _LAST_STEP.append(LastStep)
    return _LAST_STEP[0]


def custom_objects() -> dict[str, Any]:
    """What ``keras.saving.load_model`` needs for a model this adapter built (``custom_objects=``): the
    LastStep layer and the registered hard_sigmoid (Keras 2's under Keras 3, Keras 3's under Keras 2)."""
    return {"rnn_verify>LastStep": _last_step_class(), **keras_compat.custom_objects()}


# ---------------------------------------------------------------------------------------------- describe

def _activation_name(fn: Any, allowed: tuple[str, ...], where: str) -> str:
    name = keras_compat.activation_name(fn, allowed)
    if name is not None:
        return name
    raise ValueError(f"{where}: activation {getattr(fn, '__name__', fn)!r} is not one of {', '.join(allowed)}")


def _rnn_options(layer: Any, where: str) -> dict[str, Any]:
    """The options of one Keras SimpleRNN/LSTM/GRU; ValueError for what a Recurrent cannot describe."""
    _, keras = import_tf()
    for attr, why in (("return_state", "return_state=True (the model outputs its states)"),
                      ("stateful", "stateful=True (state carried between batches)")):
        if getattr(layer, attr):
            raise ValueError(f"{where}: {why} cannot be described")
    if layer.unroll and layer.go_backwards:
        # Measured in Keras 3.15.1: the unrolled loop zeroes masked outputs with the mask in input order
        # while the outputs are in processing order, so it zeroes real steps (the while loop does not).
        raise ValueError(f"{where}: unroll=True with go_backwards cannot be described (Keras's unrolled loop "
                         "zeroes the wrong steps of a masked batch)")
    cell = {keras.layers.LSTM: "lstm", keras.layers.GRU: "gru", keras.layers.SimpleRNN: "simple_rnn"}[type(layer)]
    opts: dict[str, Any] = {
        "cell": cell, "hidden_size": int(layer.cell.units),
        "activation": _activation_name(layer.cell.activation, RECURRENT_ACTIVATIONS, where),
        "use_bias": bool(layer.cell.use_bias), "return_sequences": bool(layer.return_sequences),
        "zero_output_for_mask": bool(layer.zero_output_for_mask)}
    if cell != "simple_rnn":
        opts["recurrent_activation"] = _activation_name(layer.cell.recurrent_activation, RECURRENT_ACTIVATIONS, where)
    if cell == "gru":
        opts["reset_after"] = bool(layer.cell.reset_after)
    return opts


def _rnn_types() -> tuple:
    _, keras = import_tf()
    return keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU


def _describe_layer(layer: Any) -> Any:
    """The reference layer one Keras layer is (a Recurrent still without last_output), or ValueError."""
    _, keras = import_tf()
    name, kind = layer.name, type(layer)
    where = f"layer {kind.__name__} ({name})"
    if kind is keras.layers.Embedding:
        return Embedding(name, int(layer.input_dim), int(layer.output_dim), bool(layer.mask_zero))
    if kind is keras.layers.Masking:
        return Masking(name, float(layer.mask_value))
    if kind is keras.layers.Dropout:
        return Dropout(name, float(layer.rate))
    inner = layer.layer if kind is keras.layers.TimeDistributed else layer
    if type(inner) is keras.layers.Dense:  # TimeDistributed(Dense) is Dense: it acts on the last axis either way
        return Dense(name, int(inner.units), _activation_name(inner.activation, DENSE_ACTIVATIONS, where),
                     bool(inner.use_bias))
    if kind in _rnn_types():
        opts = _rnn_options(layer, where)
        if layer.go_backwards:
            opts["go_backwards"] = True
        return Recurrent(name, **opts)
    if kind is keras.layers.Bidirectional:
        fw, bw = layer.forward_layer, layer.backward_layer
        if type(fw) not in _rnn_types() or type(bw) is not type(fw):
            raise ValueError(f"unsupported layer {kind.__name__} ({name}): it wraps {type(fw).__name__} and "
                             f"{type(bw).__name__}; expected one of SimpleRNN, LSTM, GRU in both directions")
        if layer.merge_mode not in ("concat", "sum", "mul", "ave"):
            raise ValueError(f"{where}: merge_mode={layer.merge_mode!r} (two outputs) cannot be described")
        if fw.go_backwards:
            raise ValueError(f"{where}: its forward layer {fw.name} has go_backwards=True")
        opts, opts_bw = _rnn_options(fw, f"{where}, forward layer {fw.name}"), \
            _rnn_options(bw, f"{where}, backward layer {bw.name}")
        differ = sorted(k for k in opts if opts[k] != opts_bw[k])
        if differ:
            raise ValueError(f"{where}: backward layer {bw.name} differs from the forward layer in "
                             f"{', '.join(differ)}; a Recurrent has one set of options")
        return Recurrent(name, bidirectional=True, merge_mode=layer.merge_mode, **opts)
    raise ValueError(f"unsupported layer {kind.__name__} ({name})")


def _chain(model: Any) -> list[Any]:
    """The model's layers in call order (InputLayer excluded); ValueError unless each layer feeds only the next."""
    _, keras = import_tf()
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"Keras model {model.name}: expected one input and one output (a linear stack), "
                         f"found {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    chain, t = [], model.outputs[0]
    while True:  # walk back from the output: every layer must take exactly one tensor, the previous output
        op, index, _ = t._keras_history
        if isinstance(op, keras.layers.InputLayer):
            break
        args, kwargs = keras_compat.node_arguments(op, index)
        # Keras records a propagated mask as a ``mask=`` tensor of the call (computed by its own ops): allowed
        others = [k for k, v in kwargs.items()
                  if k != "mask" and any(keras_compat.is_keras_tensor(a) for a in keras_compat.flatten(v))]
        n_in = len(keras_compat.flatten(args))
        if n_in != 1 or not keras_compat.is_keras_tensor(args[0]) or others:
            raise ValueError(f"Keras model {model.name}: layer {type(op).__name__} ({op.name}) is called on {n_in} "
                             f"tensor(s){' and ' + ', '.join(others) if others else ''}; a linear stack calls each "
                             "layer on the previous layer's output alone")
        chain.append(op)
        t = args[0]
    chain.reverse()
    if [id(l) for l in chain] != [id(l) for l in layers]:
        raise ValueError(f"Keras model {model.name}: its layers {[l.name for l in layers]} are not one linear chain "
                         f"from input to output ({[l.name for l in chain]})")
    return layers


def _described(model: Any) -> tuple[int, list[tuple[Any, list[Any]]]]:
    """(input_size, [(reference layer, the Keras layers that compute it)])."""
    last_step = _last_step_class()
    pairs: list[tuple[Any, list[Any]]] = []
    for layer in _chain(model):
        if isinstance(layer, last_step):
            prev = pairs[-1][0] if pairs else None
            if not (isinstance(prev, Recurrent) and prev.return_sequences):
                raise ValueError(f"unsupported layer LastStep ({layer.name}): it must follow a recurrent layer "
                                 "that returns its sequence")
            # the merged output at the last step: its backward half has seen only the last input
            merged = replace(prev, return_sequences=False, last_output="last_step" if prev.bidirectional else "final")
            pairs[-1] = (merged, pairs[-1][1] + [layer])
            continue
        pairs.append((_describe_layer(layer), [layer]))
    if not pairs:
        raise ValueError(f"Keras model {model.name} has no layers")
    try:
        shape = tuple(model.inputs[0].shape)
    except (AttributeError, ValueError) as e:
        raise ValueError(f"Keras model {model.name} has no input shape; start it with keras.Input") from e
    if isinstance(pairs[0][0], Embedding):
        input_size = 0  # integer ids (B, T): no feature axis
    elif len(shape) != 3 or shape[-1] is None:
        raise ValueError(f"Keras model {model.name}: expected inputs (batch, steps, features), got shape {shape}")
    else:
        input_size = int(shape[-1])
    return input_size, pairs


def describe(model: Any, name: str = "keras model") -> StackSpec:
    """The description of a Sequential or linear functional Keras model; ValueError naming the layer
    that cannot be described. Loss and accuracy: a softmax output -> prob_ce and argmax, else mse and abs_tol."""
    input_size, pairs = _described(model)
    layers = tuple(layer for layer, _ in pairs)
    last = layers[-1]
    softmax = isinstance(last, Dense) and last.activation == "softmax"
    return StackSpec(name, input_size, layers, "prob_ce" if softmax else "mse", "argmax" if softmax else "abs_tol")


def _match(model: Any, spec: StackSpec) -> list[tuple[Any, list[Any]]]:
    """[(spec layer, the Keras layers that compute it)], the model's layers taken in order."""
    _, pairs = _described(model)
    if len(pairs) != len(spec.layers):
        raise ValueError(f"Keras model {model.name} has {len(pairs)} layers ({', '.join(l.name for l, _ in pairs)}); "
                         f"{spec.name!r} has {len(spec.layers)}")
    out = []
    for (got, keras_layers), want in zip(pairs, spec.layers):
        shape = ("cell", "bidirectional", "return_sequences")
        same = type(got) is type(want) and (not isinstance(want, Recurrent)
                                            or all(getattr(got, f) == getattr(want, f) for f in shape))
        if not same:
            raise ValueError(f"Keras layer {keras_layers[0].name} ({type(keras_layers[0]).__name__}) does not compute "
                             f"layer {want.name} ({want.kind}) of {spec.name!r}")
        out.append((want, keras_layers))
    return out


# ------------------------------------------------------------------------------------------ build, extract

def _keras_name(name: str) -> str:
    return name.replace("/", "_")


def _make(layer: Any, dtype: str, seed: int | None = None) -> list[Any]:
    """The Keras layers that compute one reference layer, every one in ``dtype`` (sublayers included:
    Keras sublayers do not inherit a parent's dtype); ``seed`` seeds a Dropout layer's own generator."""
    _, keras = import_tf()
    name = _keras_name(layer.name)
    if isinstance(layer, Embedding):
        return [keras.layers.Embedding(layer.input_dim, layer.output_dim, mask_zero=layer.mask_zero, dtype=dtype,
                                       name=name)]
    if isinstance(layer, Masking):
        return [keras.layers.Masking(layer.mask_value, dtype=dtype, name=name)]
    if isinstance(layer, Dropout):
        return [keras.layers.Dropout(layer.rate, seed=seed, dtype=dtype, name=name)]
    if isinstance(layer, Dense):
        return [keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, dtype=dtype,
                                   name=name)]
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[layer.cell]
    opts: dict[str, Any] = {"activation": keras3._activation(layer.activation), "use_bias": layer.use_bias,
                            "zero_output_for_mask": layer.zero_output_for_mask,
                            "return_sequences": _keras_sequences(layer), "go_backwards": layer.go_backwards}
    if layer.cell != "simple_rnn":
        opts["recurrent_activation"] = keras3._activation(layer.recurrent_activation)
    if layer.cell == "gru":
        opts["reset_after"] = layer.reset_after
    if not layer.bidirectional:
        return [cls(layer.hidden_size, dtype=dtype, name=name, **opts)]
    # Keras makes the backward layer from the forward one's config (go_backwards flipped), as a user's would be
    made = [keras.layers.Bidirectional(cls(layer.hidden_size, dtype=dtype, name=name, **opts),
                                       merge_mode=layer.merge_mode, dtype=dtype, name=name)]
    if _keras_sequences(layer) != layer.return_sequences:
        made.append(_last_step_class()(dtype=dtype, name=f"{name}_last_step"))
    return made


def _weighted(spec_layer: Any, keras_layer: Any) -> list[tuple[Any, tuple, str]]:
    """(Keras layer holding the variables, layout table, canonical prefix) of one weighted layer."""
    _, keras = import_tf()
    if isinstance(spec_layer, Embedding):
        return [(keras_layer, EMBEDDING, spec_layer.name)]
    if isinstance(spec_layer, Dense):
        inner = keras_layer.layer if isinstance(keras_layer, keras.layers.TimeDistributed) else keras_layer
        return [(inner, tables.KERAS_DENSE, spec_layer.name)]
    if isinstance(spec_layer, Recurrent):
        if isinstance(keras_layer, keras.layers.Bidirectional):
            dirs = {"fw": keras_layer.forward_layer, "bw": keras_layer.backward_layer}
        else:
            dirs = {"fw": keras_layer}
        return [(l, keras3._table(l), f"{spec_layer.name}/{d}") for d, l in dirs.items()]
    return []


def build(spec: StackSpec, params: dict[str, np.ndarray], dtype: str, variant: str = "") -> Any:
    """A Keras model (a linear functional model, layer names = the spec's with "/" -> "_") holding exactly
    ``params`` cast to ``dtype``. ``variant`` builds a deliberately broken model for the verifier's own tests
    (``VARIANTS``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    reason = _cannot_hold(spec)  # masks are the batch's business: ``run`` refuses what Keras cannot run
    if reason:
        raise ValueError(f"Keras cannot build {spec.name!r}: {reason}")
    stack.check_params(spec, params)
    check_buildable(spec.layers, "Keras")
    _, keras = import_tf()
    if spec.takes_ids:
        x = keras.Input((None,), dtype="int32", name="inputs")
    else:
        x = keras.Input((None, spec.input_size), dtype=dtype, name="inputs")
    seq, made = x, []
    for layer in spec.layers:
        keras_layers = _make(layer, dtype, 0 if variant else None)  # the broken variant's dropout: seeded
        for k in keras_layers:
            seq = k(seq)
        made.append((layer, keras_layers[0]))
    model = keras.Model(x, seq, name=_keras_name(spec.name).replace(" ", "_"))
    for layer, k in made:
        for holder, table, pre in _weighted(layer, k):
            keras3._assign(holder, table, params, pre, dtype)
    _BUILT_FROM[model] = spec
    _VARIANT[model] = variant
    return model


def extract(model: Any, spec: StackSpec | None = None) -> dict[str, np.ndarray]:
    """The model's weights in canonical names (float64), named after ``spec``'s layers (default: the spec
    the model was built from, else its description)."""
    spec = spec or _BUILT_FROM.get(model) or describe(model)
    params: dict[str, np.ndarray] = {}
    for layer, keras_layers in _match(model, spec):
        for holder, table, pre in _weighted(layer, keras_layers[0]):
            params.update(keras3._to_canonical(table, {n: v.numpy() for n, v in keras3._by_name(holder).items()}, pre))
    stack.check_params(spec, params)
    return {n: params[n] for n in stack.param_shapes(spec)}


# --------------------------------------------------------------------------------------------------- run

@contextlib.contextmanager
def _returning_state(layer: Any) -> Iterator[None]:
    """Make a recurrent layer (and a Bidirectional's two layers) also return its final states for one
    call; a user's layers were built with return_state=False. Restored afterwards."""
    _, keras = import_tf()
    targets = [layer]
    if isinstance(layer, keras.layers.Bidirectional):
        targets += [layer.forward_layer, layer.backward_layer]
    saved = [t.return_state for t in targets]
    try:
        for t in targets:
            t.return_state = True
        yield
    finally:
        for t, s in zip(targets, saved):
            t.return_state = s


def _loss_and_accuracy(spec: StackSpec, y: Any, targets: Any) -> tuple[Any, Any]:
    """The formulas of reference/losses.py and reference/metrics.py: Keras's loss object where Keras has the
    same loss (given the dtype), the reference's ops where it has not."""
    _, keras = import_tf()
    ops = keras_compat.ops()
    # Keras 2's loss objects take no dtype and compute in the predictions' dtype, as Keras 3's do when told it
    told = {"dtype": y.dtype} if keras_compat.major() >= 3 else {}
    if spec.loss == "mse" and told:
        loss = keras.losses.MeanSquaredError(dtype=y.dtype)(targets, y)  # float32 unless told the dtype
    elif spec.loss == "mse":
        loss = keras.losses.MeanSquaredError()(targets, y)
    elif spec.loss == "softmax_ce":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, **told)(targets, y)
    elif spec.loss == "softmax_ce_steps":  # seeds/004: summed over the steps, averaged over the batch
        total = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum", **told)(targets, y)
        loss = total / ops.cast(ops.shape(y)[0], total.dtype)
    elif spec.loss == "prob_ce":  # -mean(log p[label]), no clip (Keras's loss object clips at 1e-7)
        loss = -ops.mean(ops.log(ops.take_along_axis(y, ops.expand_dims(targets, -1), axis=-1)[..., 0]))
    else:  # the article's clipped log loss
        p = ops.softmax(y, axis=-1)
        loss = -ops.mean(ops.sum(ops.log(ops.clip(p, 1e-10, 1.0)) * targets, axis=-1))
    if spec.accuracy == "argmax":
        labels = targets if spec.loss in ("softmax_ce", "prob_ce", "softmax_ce_steps") else ops.argmax(targets, axis=-1)
        hits = ops.equal(ops.argmax(y, axis=-1), ops.cast(labels, "int64"))
    elif spec.accuracy == "sequence_abs_tol":  # a sequence counts when every element is within tol
        close = ops.less(ops.abs(y - targets), spec.accuracy_tol)
        hits = ops.all(ops.reshape(close, (ops.shape(close)[0], -1)), axis=1)
    else:
        hits = ops.less(ops.abs(y - targets), spec.accuracy_tol)
    return loss, ops.mean(ops.cast(hits, "float64"))


def _unmasked(t: Any) -> Any:
    """``t`` without its Keras mask, so that no Keras loss applies it: the reference averages over every step
    (a recurrent layer's mask propagates through Dense to the prediction; tests/test_keras3.py's trap)."""
    tf, _ = import_tf()
    return tf.identity(t)


def _call_layers(spec: StackSpec, pairs: list, x: Any, states0: dict, lengths: Any, dropout: dict, own_rng: bool
                 ) -> tuple[Any, dict, dict]:
    """(prediction without its Keras mask, each recurrent layer's output, final states): the model's layers called
    one by one (see ``run``). A Dropout layer with a keep mask in ``dropout`` computes x * (mask / (1 - rate)) as
    the reference does, the Keras mask kept; without one it is the identity (inference). ``own_rng`` (the broken
    variant) calls Keras's Dropout layer in training mode instead: Keras's own random generator."""
    get_keras_mask, set_keras_mask = keras_compat.get_mask, keras_compat.set_mask
    tf, _ = import_tf()
    outputs: dict[str, Any] = {}
    finals: dict[str, Any] = {}
    seq = tf.identity(x)  # a fresh tensor to attach the lengths mask to
    if lengths is not None and not spec.takes_ids:  # ids: attached to the embedded sequence instead
        set_keras_mask(seq, lengths)
    for layer, keras_layers in pairs:
        if isinstance(layer, Recurrent):
            names = [n for d in layer.directions for n in stack.state_names(layer, d)]
            with _returning_state(keras_layers[0]):
                out = keras_layers[0](seq, initial_state=[states0[n] for n in names], mask=get_keras_mask(seq))
            seq = out[0]
            finals.update(zip(names, out[1:]))
            for k in keras_layers[1:]:  # LastStep
                seq = k(seq)
            outputs[layer.name] = seq
        elif isinstance(layer, Dropout) and own_rng:
            seq = keras_layers[0](seq, training=True)
        elif isinstance(layer, Dropout) and layer.name in dropout:
            mask = get_keras_mask(seq)
            seq = seq * (dropout[layer.name] / (1.0 - layer.rate))
            if mask is not None:  # a product is a new tensor: the steps it masks are still masked
                set_keras_mask(seq, mask)
        else:
            seq = keras_layers[0](seq)
            if isinstance(layer, Embedding) and not layer.mask_zero and lengths is not None:
                set_keras_mask(seq, lengths)
    return _unmasked(seq), outputs, finals


def _targets(spec: StackSpec, batch: Batch, dtype: str) -> Any:
    tf, _ = import_tf()
    integer_targets = spec.loss in ("softmax_ce", "prob_ce", "softmax_ce_steps")
    return tf.constant(batch.targets, dtype="int64" if integer_targets else dtype)


_CALL_OPTIONS: dict[tuple, Any] = {}


@contextlib.contextmanager
def without_graph_rewrites() -> Iterator[None]:
    """Grappler (TensorFlow's graph optimiser) off for the ``tf.function`` calls inside, this thread's calls only:
    the function then runs, as one graph, the very ops the model's layers define, and its forward values are
    bit for bit those of the eager run. Measured (tests/test_keras_compiled_run.py; README, "Speed"):

    * with grappler, constant folding rewrites ``x / c`` for a constant ``c`` into ``x * (1 / c)``: Keras 3's
      hard_sigmoid, relu6(x + 3) / 6, puts a GRU's outputs 1 ulp off ``model(x)`` (tests/test_keras_stack.py,
      test_run_computes_what_the_model_itself_computes); the arithmetic optimiser regroups the sums of a
      tensor's gradient contributions (the attention model's gradients up to 3.6e-15 relative off the eager
      ones), and other rewrites moved the float32 outputs of stacks with an Embedding by an ulp;
    * without it, what still differs from the eager run is rounding in the gradients of weights used at every
      step, which TensorFlow's while loop sums over the steps in another order (up to 3e-7 relative in float32,
      1.5e-16 in float64, in 7 of 40 drawn stacks);
    * speed at B=20 T=35 D=H=200, one process, grappler off over on: 0.95x to 1.05x for each of simple_rnn,
      lstm, gru, stacked and bidirectional in both dtypes (the machine's noise).
    """
    import_tf()  # the first import of TensorFlow, quietly
    # no public API sets the graph optimisations of one call: the eager context's per-thread call options
    # (the same in TensorFlow 2.15 and 2.21) carry the ConfigProto each function is instantiated with
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context
    ctx = context.context()
    saved = ctx.function_call_options
    key = (saved.executor_type, saved.config_proto_serialized)
    if key not in _CALL_OPTIONS:
        config = config_pb2.ConfigProto()
        config.ParseFromString(saved.config_proto_serialized)
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        _CALL_OPTIONS[key] = context.FunctionCallOptions(executor_type=saved.executor_type, config_proto=config)
    ctx.function_call_options = _CALL_OPTIONS[key]
    try:
        yield
    finally:
        ctx.function_call_options = saved


class _Compiled:
    """One (spec, dtype)'s traced forward and backward of a model, with the variables it differentiates (and the
    layers holding them) in the order of its gradients."""

    __slots__ = ("holders", "variables", "function")

    def __init__(self, holders: list, variables: list, function: Any) -> None:
        self.holders, self.variables, self.function = holders, variables, function


def _forward_backward(spec: StackSpec, pairs: list, variables: list, x: Any, states0: dict, lengths: Any,
                      dropout: dict, targets: Any) -> tuple:
    """(prediction, recurrent outputs, final states, loss, accuracy, gradients of ``variables``, the inputs
    (unless ids) and ``states0``): the body ``run`` traces."""
    tf, _ = import_tf()
    watched = ([] if spec.takes_ids else [x]) + list(states0.values())
    with tf.GradientTape() as tape:
        tape.watch(watched)
        y, outputs, finals = _call_layers(spec, pairs, x, states0, lengths, dropout, False)
        loss, acc = _loss_and_accuracy(spec, y, targets)
    grads = tape.gradient(loss, variables + watched)
    grads = [tf.convert_to_tensor(g) if g is not None else None for g in grads]  # Embedding: IndexedSlices
    return y, outputs, finals, loss, acc, grads


def _compiled(model: Any, spec: StackSpec, dtype: str) -> _Compiled:
    """The model's traced run for ``spec`` and ``dtype``, made on first use and kept with the model, so that a
    second run neither traces again nor matches the layers again."""
    tf, _ = import_tf()
    entries = keras_compat.run_cache(model)
    key = (spec, dtype)
    if key not in entries:
        pairs = _match(model, spec)
        holders = [(h, table, pre) for layer, ks in pairs for h, table, pre in _weighted(layer, ks[0])]
        variables = [(h, table, pre, n, v) for h, table, pre in holders for n, v in keras3._by_name(h).items()]
        body = functools.partial(_forward_backward, spec, pairs, [v for *_, v in variables])
        # autograph off: the loops run over Python lists of layers (Keras's recurrent layers bring their own
        # while loop); reduce_retracing: a batch of another size or length reuses one trace with unknown shapes
        function = tf.function(body, autograph=False, reduce_retracing=True)
        entries[key] = _Compiled(holders, variables, function)
    return entries[key]


def tracing_count(model: Any, spec: StackSpec, dtype: str) -> int:
    """How many times ``run`` has traced its function for this model, spec and dtype (0 before the first run)."""
    entry = keras_compat.run_cache(model, create=False).get((spec, dtype))
    return 0 if entry is None else entry.function.experimental_get_tracing_count()


def run(model: Any, spec: StackSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final states, loss, accuracy and gradients as TensorFlow computes them, in the keys of
    ``reference.stack.evaluate``.

    As a Keras user runs a model: forward, loss and gradients in one ``tf.function`` (traced on the first run
    of a model, spec and dtype, kept with the model: later runs reuse it, a batch of another shape retraces
    once with unknown batch and time sizes), without grappler's graph rewrites (``without_graph_rewrites``):
    the ops the layers define, as eager Keras runs them. The NumPy arrays become tensors once before the call
    and the results NumPy arrays once after it.

    The model's layers are called one by one, each recurrent layer with the batch's initial states.
    Keras propagates the masks itself (Masking, Embedding(mask_zero), recurrent layers); the batch's
    ``lengths`` are attached as the mask of the inputs. Two places where Keras's own propagation is not
    what runs here, each for a measured reason:

    * a recurrent layer called with ``initial_state`` does not pick up its input's mask (Keras
      auto-fills ``mask`` only for a call with one tensor argument), so the mask is passed explicitly;
    * ``Embedding(mask_zero=False)`` drops an incoming mask; the lengths describe the sequence, so they
      are attached again to the embedded sequence (as the reference keeps them).
    """
    tf, keras = import_tf()
    reason = supports(spec, batch.lengths is not None)
    if reason:
        raise ValueError(f"Keras cannot run {spec.name!r}: {reason}")
    compiled = _compiled(model, spec, dtype)
    stack.check_inputs(spec, batch.inputs)
    x = tf.constant(batch.inputs, dtype="int32" if spec.takes_ids else dtype)
    states0 = {n: tf.constant(v, dtype=dtype) for n, v in stack.initial_states(spec, batch).items()}
    lengths = stack.lengths_mask(batch)
    lengths = None if lengths is None else tf.constant(lengths)
    dropout = {n: tf.constant(m, dtype=dtype) for n, m in (batch.dropout_masks or {}).items()}
    with without_graph_rewrites():
        y, outputs, finals, loss, acc, grads = compiled.function(x, states0, lengths, dropout,
                                                                 _targets(spec, batch, dtype))
    variables = compiled.variables
    by_holder: dict[int, dict[str, np.ndarray]] = {}
    for (h, _, _, n, v), g in zip(variables, grads):
        by_holder.setdefault(id(h), {})[n] = (g if g is not None else tf.zeros_like(v)).numpy()
    gradient: dict[str, np.ndarray] = {}
    for h, table, pre in compiled.holders:
        gradient.update(keras3._to_canonical(table, by_holder.get(id(h), {}), pre))
    gradient = {n: gradient[n] for n in stack.param_shapes(spec)}
    rest = grads[len(variables):]
    if not spec.takes_ids:
        gradient["inputs"], rest = rest[0].numpy(), rest[1:]
    for n, g in zip(states0, rest):
        gradient[initial_state_gradient_name(n)] = g.numpy() if g is not None else np.zeros(states0[n].shape, dtype)
    return {"output": {"prediction": y.numpy(), **{n: v.numpy() for n, v in outputs.items()}},
            "state": {n: finals[n].numpy() for n in stack.state_shapes(spec, 1)},
            "loss": {"loss": loss.numpy()}, "accuracy": {"accuracy": acc.numpy()}, "gradient": gradient}


def train(model: Any, spec: StackSpec, batches: list[Batch], lr: float, dtype: str,
          progress: Callable[[str], None] = lambda s: None, after_step: Callable[[int], None] = lambda i: None,
          optimizer: str = "sgd", hyper: dict | None = None, carry_state: bool = False,
          clip_norms: list[float] | None = None) -> list[float]:
    """``optimizer`` (keras.optimizers, built as adapters/keras_optim.py does; reference/optimizers.py names them
    and their Keras rules) on the model's loss under a GradientTape, one step per batch, with the batch's dropout
    masks; the losses. ``hyper``: hyper-parameters by the reference's names (``clip_norm`` is
    ``global_clipnorm``).

    ``carry_state``: batch s >= 1 starts from the final states the model reached on batch s - 1 (no gradient
    flows back into them: truncated backpropagation through time); ``batches[0]``'s initial state is the first.
    An Embedding's gradient (tf.IndexedSlices) is made dense before the optimiser: given the slices, Keras's
    Adagrad, RMSprop and Adam do not compute their dense update (measured in README, "Training layer stacks"),
    which torch (nn.Embedding(sparse=False)) and the reference compute.
    ``after_step(i)`` is called once step ``i`` has updated the model (the verifier reads the weights there).
    ``clip_norms``, when given, receives the global norm ``global_clipnorm`` clipped by at each step (with
    ``clip_norm`` only; adapters/keras_optim.py ``global_norm``)."""
    tf, keras = import_tf()
    opt = keras_optim.optimizer(keras, optimizer, lr, hyper or {})
    record = clip_norms is not None and (hyper or {}).get("clip_norm") is not None
    pairs = _match(model, spec)
    own_rng = _VARIANT.get(model) == "own_dropout_rng"
    variables = list(model.trainable_variables)
    opt.build(variables)  # its slots made here, not inside the tf.function (which would then be traced twice)
    losses: list[float] = []
    carried: dict[str, Any] | None = None

    @tf.function(autograph=False, reduce_retracing=True)  # Python loops over layers and steps: nothing to convert
    def step(x: Any, states0: dict, lengths: Any, dropout: dict, targets: Any) -> tuple[Any, dict, Any]:
        with tf.GradientTape() as tape:
            y, _, finals = _call_layers(spec, pairs, x, states0, lengths, dropout, own_rng)
            loss, _ = _loss_and_accuracy(spec, y, targets)
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in tape.gradient(loss, variables)]
        # the norm only when asked for: otherwise the traced step is the one it always was
        norm = keras_optim.global_norm(keras, grads) if record else tf.constant(0.0)
        opt.apply_gradients(zip(grads, variables))
        return loss, finals, norm

    for i, b in enumerate(batches):
        reason = supports(spec, b.lengths is not None)
        if reason:
            raise ValueError(f"Keras cannot run {spec.name!r}: {reason}")
        x = tf.constant(b.inputs, dtype="int32" if spec.takes_ids else dtype)
        states0 = carried if carried is not None else \
            {n: tf.constant(v, dtype=dtype) for n, v in stack.initial_states(spec, b).items()}
        lengths = stack.lengths_mask(b)
        lengths = None if lengths is None else tf.constant(lengths)
        dropout = {n: tf.constant(m, dtype=dtype) for n, m in (b.dropout_masks or {}).items()}
        loss, finals, norm = step(x, states0, lengths, dropout, _targets(spec, b, dtype))
        if record:
            clip_norms.append(float(norm))
        if carry_state:
            carried = {n: tf.stop_gradient(v) for n, v in finals.items()}
        losses.append(float(loss))
        after_step(i)
        if (i + 1) % max(1, len(batches) // 4) == 0 or i + 1 == len(batches):
            progress(f"tensorflow: step {i + 1}/{len(batches)}, training loss {losses[-1]:.4f}")
    return losses
