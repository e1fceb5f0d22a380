"""Errors that end a run with a clear message (exit code 2), never a traceback."""


class VmqError(Exception):
    """Base class: anything the CLI turns into a one-paragraph message."""

    exit_code = 2


class InputError(VmqError):
    """Bad input: names the field, what is wrong with it, and how to fix it."""

    def __init__(self, field: str, problem: str, fix: str = ""):
        self.field, self.problem, self.fix = field, problem, fix
        text = f"{field}: {problem}"
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class CollectionError(VmqError):
    """A source as a whole could not be read (no kubeconfig, unknown context, unreadable file)."""
