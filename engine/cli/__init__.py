"""The ``wsv`` command line."""
