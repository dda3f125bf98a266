"""The error every data set loader raises for a damaged input file."""


class DataError(ValueError):
    """A data file that exists but cannot be used: truncated, corrupt, or not in the expected
    format. The message is one line naming the file (and the line or entry) and what is wrong.

    A ValueError, so the commands print it as one ``error: ...`` line; a missing file is a
    FileNotFoundError, which they print the same way."""
