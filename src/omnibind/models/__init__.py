"""Towers that turn a preprocessed batch into one embedding per example, and the model that holds them."""
