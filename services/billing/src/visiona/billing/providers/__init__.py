"""Adapters to external APIs, one module per vendor: the only modules that import its SDK."""
