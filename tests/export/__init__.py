"""Tests of the HTTP exporter, its on-disk spool and the OTLP destination."""
