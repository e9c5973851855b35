"""synthssl.core: the plumbing every command shares.

The configuration engine (``config``), progress and logging (``console``), output errors
(``errors``), the package version (``version``), YAML with scientific-notation numbers
(``yaml_numbers``) and which pip extra a command needs (``extras``). NumPy and PyYAML at
most, so that the shard-format-only install (``pip install synthssl``) still works.
"""
