"""catalog: a container-image catalog kept in relational tables."""

__version__ = "0.1.0"
