"""The training dataset: normalized photos streamed from S3 into one zip in S3.

The streaming itself is the kit's (visiona.kit.zipstream, shared with account exports):
nothing holds the dataset in memory, and a failure on either side stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from visiona.kit.storage import Storage
from visiona.kit.zipstream import PART_SIZE, Archive, ZipAssemblyError
from visiona.kit.zipstream import assemble as zipstream_assemble

# A photo missing or unreadable, or the upload failed: the dataset was not stored.
DatasetError = ZipAssemblyError
Dataset = Archive

__all__ = ["PART_SIZE", "Dataset", "DatasetError", "assemble"]


async def assemble(storage: Storage, members: Sequence[tuple[str, str]], key: str) -> Dataset:
    """Zip ``members`` (``(name in the zip, S3 key)``) into the object ``key``."""
    if not members:
        raise DatasetError("no photos")
    return await zipstream_assemble(storage, members, key)
