"""The renderer's pure helpers, without a render window: labels."""

from __future__ import annotations


from llstudio.renderer.text import format_loss


def test_format_loss_digits_and_divergence():
    assert format_loss(0.123456) == "0.123" and format_loss(0.123456, 4) == "0.1235"
    assert format_loss(float("nan")) == "diverged" and format_loss(float("inf"), 4) == "diverged"
