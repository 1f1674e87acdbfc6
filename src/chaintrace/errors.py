"""Error types shown to users as a one-line message (the CLI maps them to exit codes, never tracebacks)."""


class ChaintraceError(Exception):
    """A failure that is not a bug: the message names what went wrong and where."""

    exit_code = 1


class UserError(ChaintraceError):
    """A request that cannot be satisfied as asked (bad argument, unknown seed, empty store...): exit 2."""

    exit_code = 2
