"""The questions the demo agent answers (all answerable from the demo corpus and the calculator)."""

from __future__ import annotations

__all__ = ["QUESTIONS"]

QUESTIONS: tuple[str, ...] = (
    "What's the population of Iceland, and what's the square of that number?",
    "What is the capital of Iceland?",
    "What is the chemical symbol of gold?",
    "How tall is Mount Everest?",
    "What is the population of Norway?",
)
"""Asked in this order; ``lucidtrace demo --questions N`` asks the first N."""
