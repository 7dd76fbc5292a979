"""Log files read where they lie: the ``sources:`` section (``type: file``).

- ``config``: the section's parser (``SourcesConfig``).
- ``tailer``: finds and follows the files (globs, inotify plus a periodic scan), survives rotation
  by rename and by copytruncate (rotated files read to their end, gzip-compressed ones too), and
  cuts their bytes into chunks of records; ``framing`` splits lines (long lines cut, partial lines
  awaited, CRI and docker partial lines joined, multi-line records grouped by ``multiline``);
  ``records`` parses each line with ``logwarden.formats`` into the native record shape;
  ``kubernetes`` reads pod metadata from the file names.
- ``checkpoint``: where each file was read to, saved only once the records before that offset
  are durable.
- ``local``: the sources of a collector process (records written ahead through its ingestor).
- ``agent`` and ``shipper``: the node agent (``logwarden agent``): same tailer, records buffered
  on disk and shipped to a central collector's native API.

This package imports neither Arrow nor the collector's servers unless its collector side
(``local``) is used, so that the agent stays small.
"""
from logwarden.collector.sources.config import FileSource, Multiline, SourcesConfig, parse_sources

__all__ = ["FileSource", "Multiline", "SourcesConfig", "parse_sources"]
