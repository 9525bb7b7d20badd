"""The data package's error types: each names the file and the problem."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A data file exists but its content is wrong (corrupt archive, bad header, bad labels...).

    The message always names the file and what is wrong with it.
    """


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not on disk where we looked (and downloading was not allowed or failed).

    The message lists the folders searched and the files to put there: a short first line, then
    one folder per line (`keep_lines` tells the command line to print it as it is).
    """

    keep_lines = True


class DownloadError(OSError):
    """A download failed (network error, cut-off transfer, checksum mismatch); nothing was kept."""
