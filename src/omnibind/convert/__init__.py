"""Importers that turn other projects' checkpoints into omnibind models."""
