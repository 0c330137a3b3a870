"""The whole suite's tiers and server fixtures: tests/support/plugin.py."""

pytest_plugins = ["tests.support.plugin"]
