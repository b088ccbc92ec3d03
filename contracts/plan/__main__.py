"""``python -m contracts.plan check FILE…``: every problem of every plan file, at once.

One line per problem, ``FILE:LINE: path: message`` in Vietnamese (warnings say so), then a
summary line. Exit status 1 when any file has an error, 0 otherwise: warnings (a reporting
unit without contacts...) are printed but never fail the check, so ``make up`` lists them and
starts anyway.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from contracts.plan.loading import PlanFileError, Problem, load, warnings


def check(path: Path) -> list[Problem]:
    """Every error, then every warning, of the plan file at ``path``."""
    try:
        plan = load(path)
    except PlanFileError as error:
        return error.problems
    return warnings(path, plan)


def summary(files: int, errors: int, warned: int) -> str:
    verdict = "có lỗi, cần sửa" if errors else "hợp lệ"
    return f"Đã kiểm tra {files} tệp kế hoạch: {errors} lỗi, {warned} cảnh báo ({verdict})."


def run(paths: Sequence[Path], *, quiet: bool = False, out: TextIO = sys.stdout) -> int:
    errors = warned = 0
    for path in paths:
        for problem in check(path):
            if problem.warning:
                warned += 1
            else:
                errors += 1
            if not (quiet and problem.warning):
                out.write(f"{problem}\n")
    if not quiet:
        out.write(summary(len(paths), errors, warned) + "\n")
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.plan",
        description="Kiểm tra tệp kế hoạch (YAML hoặc JSON, định dạng 1 hoặc 2).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser(
        "check", help="in mọi lỗi và cảnh báo của từng tệp, kèm dòng và đường dẫn trường"
    )
    checker.add_argument("files", nargs="+", type=Path, metavar="FILE")
    checker.add_argument("--quiet", "-q", action="store_true", help="chỉ in lỗi")
    args = parser.parse_args(argv)
    return run(args.files, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
