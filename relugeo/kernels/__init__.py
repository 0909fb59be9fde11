"""Compiled core (numba). Pure arrays in, arrays out: no torch, no matplotlib."""
