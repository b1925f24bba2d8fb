"""Helpers the tests share: model builders, server processes, in-process servers, load."""
