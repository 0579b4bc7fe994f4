"""Parsers: one module per record format or program; ``registry`` names them all."""
