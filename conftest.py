"""The whole suite's tiers and server fixtures: tests/support/plugin.py; the web app under
test: tests/support/web.py."""

pytest_plugins = ["tests.support.plugin", "tests.support.web"]
