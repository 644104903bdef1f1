"""Drop-in replacements for slayer's ``_li_dynamics_fwd`` / ``_li_dynamics_bwd``.

Same signatures as stock. Everything outside the time loop (casts,
broadcasting, the ``grad_decay`` reduction) is stock's own torch code, so its
rounding is stock's; only the loop runs in numba (``kernels.py``). Any input
the kernels were not written for (CUDA or other devices, other dtypes, autograd
recording, odd broadcasting, empty tensors) is handed to the stock function.
"""

from __future__ import annotations

import numpy as np
import torch

from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator as _li

from . import kernels

# Captured at import, before any patching: the functions we fall back to.
STOCK_FWD = _li._li_dynamics_fwd
STOCK_BWD = _li._li_dynamics_bwd

_W_SCALE_MAX = 1 << 24  # float32 represents every integer w_scale up to here


def _on_cpu(*tensors: torch.Tensor) -> bool:
    return all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors)


def _broadcast_to(lead: torch.Size, *shapes: torch.Size) -> bool:
    """Whether every shape broadcasts to `lead` itself (torch.broadcast_shapes(*shapes, lead) == lead),
    in plain Python: torch's own check costs more than a time step of the kernel."""
    for shape in shapes:
        if len(shape) > len(lead):
            return False
        for dim, full in zip(reversed(shape), reversed(lead)):
            if dim != full and dim != 1:
                return False
    return True


def _records_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _fwd_supported(input, decay, state, threshold, w_scale, dtype) -> bool:
    return (
        dtype is torch.int64
        and _on_cpu(input, decay, state)
        and input.dtype is torch.float32
        and input.dim() >= 1
        and input.shape[-1] > 0
        and input.numel() > 0
        and type(w_scale) is int
        and 1 <= w_scale <= _W_SCALE_MAX
        and type(threshold) in (int, float)
        and not _records_grad(input, decay, state)
    )


def li_dynamics_fwd(input, decay, state, threshold, w_scale, dtype=torch.int32):
    """Compiled ``_li_dynamics_fwd`` (int64 path); stock for anything else."""
    if not _fwd_supported(input, decay, state, threshold, w_scale, dtype):
        return STOCK_FWD(input, decay, state, threshold, w_scale, dtype=dtype)
    lead = input.shape[:-1]
    # stock's own preparation, verbatim
    output_old = (state * w_scale).clone().detach().to(dtype)
    decay_int = (1 << 12) - decay.clone().detach().to(dtype)
    if not _broadcast_to(lead, output_old.shape, decay_int.shape):
        return STOCK_FWD(input, decay, state, threshold, w_scale, dtype=dtype)
    output = torch.empty_like(input)  # stock: zeros_like, same layout
    if not output.is_contiguous():
        return STOCK_FWD(input, decay, state, threshold, w_scale, dtype=dtype)

    scaled = threshold * w_scale  # stock: threshold *= w_scale
    if isinstance(scaled, int) and not -_W_SCALE_MAX < scaled < _W_SCALE_MAX:
        # stock compares int64 >= int exactly; the kernel compares in float32,
        # which agrees only while float32 holds the threshold and its neighbours
        return STOCK_FWD(input, decay, state, threshold, w_scale, dtype=dtype)
    rows, steps = lead.numel(), input.shape[-1]
    kernels.li_forward(
        input.detach().contiguous().reshape(rows, steps).numpy(),
        output_old.expand(lead).contiguous().reshape(rows).numpy(),
        decay_int.expand(lead).contiguous().reshape(rows).numpy(),
        np.float32(w_scale),
        np.float32(scaled),
        bool(scaled > 0),
        output.view(rows, steps).numpy(),
    )
    return output


def _bwd_supported(grad_output, output, decay) -> bool:
    return (
        _on_cpu(grad_output, output, decay)
        and grad_output.dtype is torch.float32
        and decay.dtype is torch.float32
        and grad_output.dim() >= 1
        and grad_output.shape[-1] > 0
        and grad_output.numel() > 0
        and not _records_grad(grad_output, output, decay)
    )


def li_dynamics_bwd(grad_output, output, decay):
    """Compiled ``_li_dynamics_bwd`` time loop; the reductions are stock's torch code."""
    if not _bwd_supported(grad_output, output, decay):
        return STOCK_BWD(grad_output, output, decay)
    lead = grad_output.shape[:-1]
    grad_input = torch.empty_like(grad_output)  # stock: zeros_like, same layout; all overwritten
    factor = 1 - decay / (1 << 12)  # stock: decay = 1 - decay / (1 << 12)
    ok = _broadcast_to(lead, factor.shape)
    if not (ok and grad_input.is_contiguous() and factor.dtype is torch.float32):
        return STOCK_BWD(grad_output, output, decay)
    decay = factor
    rows, steps = lead.numel(), grad_output.shape[-1]
    kernels.li_backward(
        grad_output.detach().contiguous().reshape(rows, steps).numpy(),
        decay.expand(lead).contiguous().reshape(rows).numpy(),
        grad_input.view(rows, steps).numpy(),
    )

    # --- stock code from here on (reduction order matters) ---
    grad_decay = grad_input[..., 1:] * output[..., :-1]

    if torch.numel(decay) == 1:  # shared parameters
        grad_decay = torch.sum(grad_decay.flatten(), dim=0, keepdim=True)
    else:
        grad_decay = torch.sum(grad_decay, dim=[0, -1])
        if len(grad_decay.shape) != 1:
            grad_decay = torch.sum(
                grad_decay.reshape(grad_decay.shape[0], -1),
                dim=1
            )

    return grad_input, grad_decay
