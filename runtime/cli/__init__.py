"""The ``memos`` command line: thin commands over the runtime and protocol libraries."""
