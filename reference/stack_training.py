"""Training a layer stack in the reference: gradients, carried state (truncated BPTT), optimiser runs."""
from __future__ import annotations

import dataclasses

import numpy as np

from reference import stack, summed
from reference.spec import Batch


def gradients_and_states(spec: stack.StackSpec, params: dict, batch: Batch
                         ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The loss, its gradient with respect to every parameter (in the params' dtype) and the final states."""
    results, cache = stack.forward(spec, params, batch)
    grads = stack.backward(spec, params, cache)
    return results["loss"]["loss"], {n: grads[n] for n in stack.param_shapes(spec)}, results["state"]


def gradients(spec: stack.StackSpec, params: dict, batch: Batch) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its gradient with respect to every parameter, in the params' dtype."""
    loss, grads, _ = gradients_and_states(spec, params, batch)
    return loss, grads


def starting_from(batch: Batch, states: dict[str, np.ndarray]) -> Batch:
    """``batch`` started from ``states`` (canonical names) instead of its own initial state."""
    return dataclasses.replace(batch, initial_state=dict(states))


def optimizer_train(spec: stack.StackSpec, params: dict, batches: list[Batch], lr: float, optimizer: str = "sgd",
                    variant: str = "torch", hyper: dict | None = None, carry_state: bool = False,
                    copies: dict[str, int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``optimizer`` in ``variant`` (reference/optimizers.py), one step per batch, in the params' dtype; the trained
    parameters and the loss of every step (before its update).

    ``carry_state``: batch s >= 1 starts from the final states of batch s - 1 (reached under the weights before
    step s - 1) rather than its own; no gradient crosses a batch boundary (truncated backpropagation through time,
    as a TF1 loop feeding ``final_state`` back does). ``batches[0]``'s initial state is the first start.
    ``copies``: tensors the framework trains as a sum of several (reference/summed.py: torch's bias_ih + bias_hh),
    each summand stepped."""
    p = dict(params)
    copies = copies or {}
    state = summed.init(optimizer, p, variant, copies, **(hyper or {}))
    step_losses = []
    carried = None
    for batch in batches:
        if carried is not None:
            batch = starting_from(batch, carried)
        loss, grads, finals = gradients_and_states(spec, p, batch)
        carried = finals if carry_state else None
        p, state = summed.step(optimizer, p, grads, state, lr, variant, copies, **(hyper or {}))
        step_losses.append(loss)
    return p, np.asarray(step_losses)
