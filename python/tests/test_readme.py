"""The README's Python swap runs as printed."""

import os
import re

import torch

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def test_readme_swap_runs():
    text = open(README, encoding="utf-8").read()
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)[1]
    assert "wgrnn.torch.LSTM" in code and len(code.strip().splitlines()) <= 8, code
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    lstm, y = scope["lstm"], scope["y"]
    assert isinstance(lstm, torch.nn.Module) and y.shape == (50, 32, 512)
    assert all(p.grad is not None for p in lstm.parameters())
