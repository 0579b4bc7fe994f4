"""Live sources for ``stackwatch serve``: one module per way records arrive (see ``registry``)."""
