"""The convert command (recbole_compress.data.cli), mounted on a parser the way the main
command line mounts it, and through ``python -m recbole_compress.data``."""

from __future__ import annotations

import argparse

import pytest

from recbole_compress.data.__main__ import main as module_main
from recbole_compress.errors import UserError
from tests.data.convert_helpers import light_python, lightgcn_source


def mounted() -> argparse.ArgumentParser:
    """``recbole-compress convert`` as the lead's command line builds it."""
    from recbole_compress.data import cli

    parser = argparse.ArgumentParser(prog="recbole-compress")
    sub = parser.add_subparsers(dest="command")
    cli.configure(sub.add_parser("convert", help=cli.HELP))
    return parser


def run(argv: list[str]) -> int:
    from recbole_compress.data import cli

    return cli.run(mounted().parse_args(argv))


def test_convert_prints_one_summary_line(tmp_path, capsys):
    src = lightgcn_source(tmp_path / "src")
    assert run(["convert", "lightgcn", str(src), str(tmp_path / "out" / "tiny"), "--name", "mini", "--seed", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("mini (lightgcn): 3 users")
    assert (tmp_path / "out" / "tiny" / "mini.train.inter").is_file()


def test_list_and_help_show_every_format(capsys):
    from recbole_compress.data.convert import FORMATS

    assert run(["convert", "--list"]) == 0
    listed = capsys.readouterr().out
    assert [line.split(":")[0] for line in listed.splitlines() if line[:1].isalpha() and ": " in line[:12]] == list(
        FORMATS)
    assert "details" in listed and "rules:" in listed
    helptext = mounted()._subparsers._group_actions[0].choices["convert"].format_help()
    for fmt in FORMATS:
        assert f"\n{fmt}: " in helptext
    for flag in ("--keep-duplicates", "--keep-overlap", "--keep-unseen", "--valid-ratio", "--negatives", "--list"):
        assert flag in helptext
    assert "../shared" not in listed + helptext


@pytest.mark.parametrize(
    "argv, words",
    [
        (["convert"], ["missing FORMAT SRC DST"]),
        (["convert", "lightgcn", "somewhere"], ["missing DST"]),
        (["convert", "movielens", "SRC", "DST"], ["unknown format 'movielens'"]),
        (["convert", "s3rec", "SRC", "DST", "--seed", "1"], ["s3rec does not use --seed"]),
        (["convert", "lightgcn", "SRC", "DST", "--negatives", "3"], ["lightgcn does not use --negatives"]),
    ],
)
def test_bad_arguments_raise_a_user_error(tmp_path, argv, words):
    with pytest.raises(UserError) as caught:
        run(argv)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert not (tmp_path / "DST").exists()


def test_cli_module_imports_no_numpy(tmp_path):
    proc = light_python(
        """
        import argparse
        from recbole_compress.data import cli
        cli.configure(argparse.ArgumentParser())
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "pandas", "torch", "recbole"))
        print(heavy)
        """,
        cwd=tmp_path,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- python -m recbole_compress.data


def test_module_malformed_line_subprocess(tmp_path):
    src = lightgcn_source(tmp_path / "src", malformed=True)
    dst = tmp_path / "out" / "bad"
    proc = light_python(
        "from recbole_compress.data.__main__ import main\nsys.exit(main(sys.argv[1:]))",
        "convert", "lightgcn", str(src), str(dst), cwd=tmp_path,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error:") and "train.txt:3" in lines[0]
    assert not dst.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["missing_src", "missing_train", "malformed", "unknown_format", "bad_ratio", "usage"])
def test_module_bad_input(tmp_path, capsys, case):
    src = lightgcn_source(tmp_path / "src", malformed=(case == "malformed"))
    fmt = "lightgcn"
    if case == "missing_src":
        src = tmp_path / "nope"
    elif case == "missing_train":
        (src / "train.txt").unlink()
    elif case == "unknown_format":
        fmt = "movielens"
    dst = tmp_path / "out" / "ds"
    argv = ["convert", fmt, str(src), str(dst)] + {"bad_ratio": ["--valid-ratio", "1.5"],
                                                   "usage": ["--seed", "x"]}.get(case, [])
    try:
        status = module_main(argv)
    except SystemExit as stop:  # argparse usage errors
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    expected = {
        "missing_src": "does not exist",
        "missing_train": "'train.txt' not found",
        "malformed": "train.txt:3",
        "unknown_format": "unknown format 'movielens'",
        "bad_ratio": "--valid-ratio",
        "usage": "--seed",
    }[case]
    assert expected in err[0]
    assert not dst.exists()


def test_module_success_and_list(tmp_path, capsys):
    from recbole_compress.data.convert import FORMATS

    src = lightgcn_source(tmp_path / "src")
    assert module_main(["convert", "lightgcn", str(src), str(tmp_path / "out" / "tiny"), "--name", "mini"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("mini (lightgcn): 3 users")
    assert module_main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"\n{fmt}: " in "\n" + listed for fmt in FORMATS)
