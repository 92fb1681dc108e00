"""Comparisons against torch with named tolerances, and the worst error each kind of comparison
saw in the session (printed at the end of the run by conftest.py)."""

import numpy as np

# f32 rounding of a few hundred operations per output; PyTorch's own CPU kernels differ from
# wgrnn in summation order, so exact equality is not expected.
OUT_ABS = 1e-5
# Gradients sum over every step; relative to each tensor's largest entry.
GRAD_REL = 1e-4

# (group, measure) -> (worst error, where)
WORST = {}


def _note(group, what, err, where):
    key = (group, what)
    if key not in WORST or err > WORST[key][0]:
        WORST[key] = (err, where)


def compare(name, got, want, rel=None, abs_=None, group="other", measure=None):
    """Asserts |got - want| <= abs_ everywhere, or max |got - want| <= rel * max |want|, and
    names the worst index with both values when it fails. `measure` names the kind of value in
    the summary (default "output abs" or "gradient rel")."""
    # Equal shapes first: a subtraction would broadcast a wrong shape into a passing check.
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)}, want {tuple(want.shape)}"
    if got.numel() == 0:
        return
    diff = (got - want).abs()
    err = diff.max().item()
    idx = np.unravel_index(int(diff.argmax()), got.shape)
    at = f"at {idx}: got {got[idx].item()}, want {want[idx].item()}"
    if rel is not None:
        scale = max(want.abs().max().item(), 1e-12)
        _note(group, measure or "gradient rel", err / scale, name)
        assert err / scale <= rel, f"{name}: rel err {err / scale:.3e} > {rel} ({err:.3e} {at})"
    else:
        _note(group, measure or "output abs", err, name)
        assert err <= abs_, f"{name}: err {err:.3e} > {abs_} {at}"
