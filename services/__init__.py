"""Rapport's four services. None imports another: they share only the ``shared`` package."""
