"""User-facing errors: one line that names the problem and the fix."""


class UserError(Exception):
    """Bad input from the user (a config value, a dataset, a model name).

    The CLI prints ``error: <message>`` on one line and exits with status 2;
    the message must say what is wrong and how to fix it.
    """


class Notice(UserWarning):
    """Something the user should know but that does not stop the run (a misspelled
    key, a column that load_col names and the data lacks); the CLI prints it as
    ``warning: ...`` on one line."""
