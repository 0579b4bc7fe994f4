"""Every parser vector shipped in src/stackwatch/parsers/vectors/ passes."""

import pytest

from stackwatch.parsers.registry import load_errors, record_parsers
from stackwatch.testing import check_parser_vector, load_parser_vectors

VECTORS = load_parser_vectors()


@pytest.mark.parametrize("vector", VECTORS, ids=str)
def test_parser_vector(vector):
    check_parser_vector(vector)


def test_every_registered_parser_loads():
    record_parsers()
    assert load_errors == []
