"""The starter dataset: real images, texts and sounds from Debian and PyPI packages, built offline."""
