"""Fixtures of the real producers. The keystone fixture (one per test session) lives in
tests/conftest.py: the keystone login tests share it."""
