"""The ``mothlab`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments; its return value is the exit code). Modules are discovered, so adding a command means
adding a file. Heavy imports (JAX, Panel) happen inside the command functions, so ``mothlab --help``
stays instant.

One error boundary (:func:`main`) for every command:

- an expected failure (bad input, a missing, foreign, corrupt or damaged store, a bad config
  file, I/O: permissions, disk full, a directory where a file is expected ...) prints one line,
  ``mothlab COMMAND: error: <file>: <problem>``, and exits with 2;
- an unexpected exception prints one line that says where to report it and exits with 1 (the
  traceback only with ``--debug`` or ``MOTHLAB_DEBUG=1``);
- Ctrl-C exits with 130. A command that polls :func:`cancel_requested` (it passes it as
  ``cancel=`` to a long library function, and sets ``cancellable=True`` on its parser) stops at
  the next chunk boundary, leaving a resumable store; a second Ctrl-C stops at once. Either way
  the process waits for JAX work in flight and then exits without running interpreter teardown
  under a live XLA runtime (the cause of the segfaults after Ctrl-C, issue 14).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import signal
import sys
import threading
import traceback

from mothlab import __version__
from mothlab.progress import Cancelled
from mothlab.runtime import enable_compile_cache

#: Where unexpected errors should be reported.
REPORT_TO = (
    "the mothlab issue tracker (include the command, this message and the output of "
    "the same command with --debug)"
)

_CANCEL = threading.Event()
_INTERRUPTED = threading.Event()


def cancel_requested() -> bool:
    """True once Ctrl-C was pressed: pass as ``cancel=`` to long library functions."""
    return _CANCEL.is_set()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mothlab",
        description="Hawkmoth flight, sparse neural controllers and their wiring motifs.",
        epilog="Exit codes: 0 done, 2 bad input or an expected failure (one line says which "
        "file and what), 1 an unexpected error (a bug: please report it), 130 "
        "interrupted (Ctrl-C; stores stay resumable).",
    )
    parser.add_argument("--version", action="version", version=f"mothlab {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the full traceback of an unexpected error (also: MOTHLAB_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


_OS_PROBLEMS = {
    errno.ENOSPC: ("no space left on the device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere"),
    errno.EACCES: ("permission denied", "check the file's permissions or choose another path"),
    errno.EPERM: ("operation not permitted", "check the file's permissions or choose another path"),
    errno.EROFS: ("read-only file system", "write to another place"),
    errno.EISDIR: ("is a directory, but a file is expected", "give the path of a file"),
    errno.ENOTDIR: ("a part of the path is not a directory", "check the path"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EEXIST: ("already exists", "choose another path or remove it"),
    errno.ENAMETOOLONG: ("the file name is too long", "choose a shorter path"),
    errno.EMFILE: ("too many open files", "close other programs or raise the limit (ulimit -n)"),
    errno.EIO: ("input/output error (a failing disk or network drive?)", "check the device"),
}


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: the file(s), the problem in words and what to do."""
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    problem, fix = _OS_PROBLEMS.get(err.errno, (err.strerror or str(err), ""))
    where = " -> ".join(names)
    text = f"{where}: {problem}" if where else problem
    return f"{text}; {fix}." if fix else f"{text}."


def _expected_message(err: BaseException) -> str | None:
    """The one-line message for an expected failure, or None for an unexpected one."""
    if isinstance(err, Cancelled):
        return None
    if isinstance(err, OSError):  # FileNotFoundError, PermissionError, disk full, ...
        if type(err) is FileNotFoundError and err.errno is None:
            return str(err)  # our own message, already complete
        if err.errno is None:
            return str(err)
        return describe_os_error(err)
    if isinstance(err, ValueError):  # bad input, StoreError, JSON and Unicode decode errors
        return str(err) or type(err).__name__
    name = type(err).__name__
    text = str(err)
    if name in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in text:
        first = text.strip().splitlines()[0][:300]
        return (
            f"the accelerator ran out of memory ({first}); use fewer networks, a smaller "
            "batch or a smaller width."
        )
    if isinstance(err, MemoryError):
        return "out of memory; use fewer networks, flights or samples."
    return None


def _debug(argv) -> bool:
    return os.environ.get("MOTHLAB_DEBUG", "") not in ("", "0") or "--debug" in (
        argv if argv is not None else sys.argv[1:]
    )


def _on_sigint(signum, frame):
    _INTERRUPTED.set()
    if _CANCEL.is_set() or not _CANCELLABLE:
        raise KeyboardInterrupt
    _CANCEL.set()
    print(
        "\ninterrupted: stopping at the next chunk boundary, the store stays resumable "
        "(Ctrl-C again to stop at once)",
        file=sys.stderr,
        flush=True,
    )


_CANCELLABLE = False


def _settle_jax() -> None:
    """Wait for compiled JAX work still running (bounded by one chunk's time)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return
    try:
        for a in jax.live_arrays():
            a.block_until_ready()
    except BaseException:  # noqa: BLE001 - best effort on the way out
        pass


def _exit_now(code: int) -> None:
    """Leave the process without interpreter teardown (used after Ctrl-C from the command line):
    XLA's runtime threads may still hold Python objects that teardown frees, which is what
    segfaulted. Stores need no teardown: every file is written atomically."""
    _settle_jax()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (see the module docstring for the codes)."""
    global _CANCELLABLE
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = _debug(raw)
    # --debug is accepted anywhere on the line (mothlab train ... --debug)
    raw = [a for a in raw if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(raw)
    command = getattr(args, "command", "?")
    _CANCEL.clear()
    _INTERRUPTED.clear()
    _CANCELLABLE = bool(getattr(args, "cancellable", False))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _on_sigint)
    code = 1
    enable_compile_cache()  # a second run of any command skips its compile
    try:
        code = int(args.func(args) or 0)
        if _CANCEL.is_set():  # the command finished before its next chunk boundary
            code = 130
    except KeyboardInterrupt:
        print(f"mothlab {command}: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # e.g. `mothlab simulate | head`: the reader left; not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the final flush cannot fail
        except OSError:
            pass
        code = 0
    except Exception as err:  # noqa: BLE001 - this is the boundary
        if isinstance(err, Cancelled):
            print(f"mothlab {command}: interrupted: {err}", file=sys.stderr)
            code = 130
        else:
            text = _expected_message(err)
            if text is not None:
                print(f"mothlab {command}: error: {text}", file=sys.stderr)
                code = 2
            else:
                if debug:
                    traceback.print_exc()
                print(
                    f"mothlab {command}: unexpected error ({type(err).__name__}: "
                    f"{str(err).strip()[:300]}). This is a bug in mothlab: please report it to "
                    f"{REPORT_TO}.",
                    file=sys.stderr,
                )
                code = 1
            if debug and text is not None:
                traceback.print_exc()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if code == 130 and argv is None and _INTERRUPTED.is_set():
        _exit_now(130)
    return code


if __name__ == "__main__":
    sys.exit(main())
