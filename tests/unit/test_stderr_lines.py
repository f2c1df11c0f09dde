"""Splitting a child's stderr into log lines."""

from tunnel_client.mcp.process import _split_lines


def test_complete_lines_are_split_and_the_unfinished_rest_kept():
    assert _split_lines(b"a\nbb\ncc", 10) == ([b"a", b"bb"], b"cc")


def test_a_line_over_the_limit_is_cut_into_pieces():
    lines, rest = _split_lines(b"x" * 25 + b"\nnext", 10)
    assert lines == [b"x" * 10, b"x" * 10, b"x" * 5]
    assert rest == b"next"


def test_a_line_of_exactly_the_limit_is_one_line():
    assert _split_lines(b"y" * 10 + b"\n", 10) == ([b"y" * 10], b"")


def test_empty_lines_are_kept_for_the_caller_to_skip():
    assert _split_lines(b"\n\nz\n", 10) == ([b"", b"", b"z"], b"")
