import os
import tempfile

# wgpu's Vulkan loader wants a runtime directory; a headless CI runner may have none.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp())

import tolerance  # noqa: E402  (after the environment is set)


def pytest_terminal_summary(terminalreporter):
    """The worst error of each group of comparisons against torch, for the record."""
    if not tolerance.WORST:
        return
    import torch
    import wgrnn
    tr = terminalreporter
    tr.section(f"worst errors against torch {torch.__version__}")
    tr.write_line(f"wgrnn's adapter: {wgrnn.Context().adapter_name}")
    tr.write_line(f"{'group':<16} {'measure':<13} {'worst':>10}  where")
    for (group, what), (err, where) in sorted(tolerance.WORST.items()):
        tr.write_line(f"{group:<16} {what:<13} {err:>10.2e}  {where}")
