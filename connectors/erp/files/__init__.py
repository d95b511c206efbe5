"""Desktop ERPs through files (SAGA, WinMentor classic, Ciel, Nexus ...): ``docs/files.md``.

- ``folders.py``: the inbox and outbox, a local folder or SFTP (paramiko), atomic publish;
- ``reading.py``: CSV / XLSX / DBF into one parsed frame through the column mapping;
- ``journal.py``: the file journal (read once, written once): ``StateStore`` or in memory;
- ``orders_out.py``: a shop order as one CSV;
- ``connector.py``: ``FilesConnector``, the ``ErpConnector`` of ``connectors/erp/base.py``.
"""

from __future__ import annotations

from erpsync.connectors.erp.files.connector import DONE_SUFFIX, PROCESSED, REJECTED, FilesConnector, rejection_report
from erpsync.connectors.erp.files.folders import SYSTEM, LocalFolder, SftpFolder, open_folder
from erpsync.connectors.erp.files.journal import MemoryFileJournal
from erpsync.connectors.erp.files.orders_out import HEADER as ORDER_HEADER
from erpsync.connectors.erp.files.orders_out import order_file, order_file_name
from erpsync.connectors.erp.files.reading import UnreadableFile, parse, read_table

__all__ = [
    "DONE_SUFFIX",
    "ORDER_HEADER",
    "PROCESSED",
    "REJECTED",
    "SYSTEM",
    "FilesConnector",
    "LocalFolder",
    "MemoryFileJournal",
    "SftpFolder",
    "UnreadableFile",
    "open_folder",
    "order_file",
    "order_file_name",
    "parse",
    "read_table",
    "rejection_report",
]
