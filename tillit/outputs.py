"""Every file and directory a CLI command writes goes through :func:`writing`.

It checks each output before the command starts its work (a directory that is a file, a parent that
is not a directory, nothing writable on the way), and turns an :class:`OSError` about an output while
the command runs (a full disk, a read-only mount) into one :class:`UsageError` that names the path —
never what was being written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import UsageError

__all__ = ["writing"]

#: errors about a process, a socket or a child, not about a file we write: they keep their own meaning
_NOT_ABOUT_FILES = (ConnectionError, TimeoutError, InterruptedError, BlockingIOError, ChildProcessError,
                    ProcessLookupError)


@contextmanager
def writing(*, dirs: Iterable[Path | None] = (), files: Iterable[Path | None] = ()) -> Iterator[None]:
    """Check ``dirs`` (created as needed) and ``files`` can be written; translate write failures inside."""
    out_dirs = [d for d in dirs if d is not None]
    out_files = [f for f in files if f is not None]
    for directory in out_dirs:
        _check(directory, directory=True)
    for file in out_files:
        _check(file, directory=False)
    outputs = [*out_dirs, *out_files]
    try:
        yield
    except OSError as error:
        target = _which(error, outputs)
        if target is None:
            raise
        raise UsageError(f"cannot write {target}: {_reason(error)}") from None


def _check(target: Path, *, directory: bool) -> None:
    if target.exists() or target.is_symlink():
        if directory and not target.is_dir():
            raise UsageError(f"cannot write {target}: it exists and is not a directory")
        if not directory and target.is_dir():
            raise UsageError(f"cannot write {target}: it is a directory")
        if not os.access(target, os.W_OK | (os.X_OK if directory else 0)):
            raise UsageError(f"cannot write {target}: permission denied")
        return
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot write {target}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {target}: permission denied in {ancestor}")


def _which(error: OSError, outputs: list[Path]) -> Path | str | None:
    """The output an error is about: by the file it names, or every output when it names none."""
    if isinstance(error, _NOT_ABOUT_FILES) or not outputs:
        return None
    for name in (error.filename, error.filename2):
        if name is None:
            continue
        try:
            failed = Path(os.fsdecode(name)).absolute()
        except (TypeError, ValueError):
            continue
        for output in outputs:
            # the output itself, a file under it, or a parent being created for it
            if failed == output.absolute() or output.absolute() in failed.parents or \
                    failed in output.absolute().parents:
                return output
        return None
    return outputs[0] if len(outputs) == 1 else " or ".join(str(o) for o in outputs)


def _reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()
