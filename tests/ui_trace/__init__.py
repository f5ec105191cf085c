"""Tests of the trace detail page."""
