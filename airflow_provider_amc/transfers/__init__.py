"""Transfers of AMC results into other systems."""
