"""Test plumbing: contract validation, a daemon runner, stub servers."""
