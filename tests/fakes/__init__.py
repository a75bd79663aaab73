"""Test doubles for the servers shopbot talks to (only other people's servers are faked)."""
