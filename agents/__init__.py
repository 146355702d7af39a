"""Policies that act in the apr-env environments: symbolic solvers, random, SB3 and LLM agents."""
