"""What the tests share besides fixtures (those are in conftest.py): the run's environment
and skips (`environment`), reference files (`files`), builders of real layers, images and
archives (`builders`, `archive_builders`), layer trees to compare (`layer_trees`),
surgery on a catalog's rows and files for fsck and gc (`surgery`), a served catalog
(`serving`), and the CLI killed at a fault point (`killed_catalog`).

The tests import them as `support.<module>`: tests/ is on pytest's pythonpath.
"""
