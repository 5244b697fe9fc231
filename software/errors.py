"""The error type users see: the CLI prints its message on one line and exits with code 2."""


class RowmixError(Exception):
    """A problem with the user's input (files, options, models), never a bug in rowmix."""
