"""Property (yaml) files: where the packaged ones are, and reading any of them as data.

Light (yaml and the standard library only), so the command line and search files use it
before torch or RecBole load.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from recbole_compress.errors import UserError


def properties_dir() -> Path:
    """Where the property files are: inside the package when installed from a
    wheel, at the repository root in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "properties", here.parent / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise UserError(f"recbole_compress property files not found next to {here}; reinstall the package")


def resolve_property_file(path, what: str = "config file") -> str:
    """``path`` if it exists; else, for ``properties/...``, the file the package ships
    (so ``--config_files=properties/paper/lth_media.yaml`` works from any directory)."""
    given = Path(os.path.expanduser(str(path)))
    if given.is_file():
        return str(given)
    parts = Path(os.path.normpath(str(path))).parts
    if parts and parts[0] == "properties" and len(parts) > 1:
        packaged = properties_dir().joinpath(*parts[1:])
        if packaged.is_file():
            return str(packaged)
    if given.exists():
        raise UserError(f"{what} '{path}' is not a file; give a yaml file")
    raise UserError(
        f"{what} '{path}' not found (neither here nor among the packaged properties/ files); "
        "give an existing yaml file, e.g. properties/paper/lth_media.yaml"
    )


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader with RecBole's rule that ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``)."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(path, what: str = "config file") -> dict:
    """A yaml mapping read as data; a malformed file is one line naming the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{what} '{path}' cannot be read ({type(err).__name__}); give a readable UTF-8 yaml file") from None
    try:
        data = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else " ("
        problem = getattr(err, "problem", None) or type(err).__name__
        raise UserError(f"{what} '{path}' is not valid yaml{where}{problem}); fix that line") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} '{path}' must hold 'key: value' lines, not a {type(data).__name__}")
    return data
