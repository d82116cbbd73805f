"""The one exception type a user sees: it says what is wrong and what to fix."""


class GatedRecError(Exception):
    """An input or configuration problem the user can fix; the CLI prints it without a traceback."""
