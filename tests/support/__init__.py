"""Helpers shared by test folders: real peers started by the tests."""
