"""Entry point of the ``wsv`` command: one sub-command per job, JSON on stdout with --json, non-zero exit and
a one-line message on stderr for any bad input. Each command turns the errors it expects into messages of its
own; what a bad file raises deeper down (a damaged project, a malformed dataset file) still ends as one line
here, never as a traceback."""
from __future__ import annotations

import argparse
import sqlite3
import sys

from engine.cli import bench_cmds, detect_cmds, generate_cmds, predict_cmds, pretrain_cmds, project_cmds, train_cmds
from engine.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsv", description="WSV Studio command line: weakly-supervised segmentation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project_cmds.add_parsers(sub)
    train_cmds.add_parsers(sub)
    pretrain_cmds.add_parsers(sub)
    predict_cmds.add_parsers(sub)
    predict_cmds.add_export_parser(sub)
    detect_cmds.add_parsers(sub)
    generate_cmds.add_parsers(sub)
    bench_cmds.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = list(argv)  # what was asked, for a command that starts itself again (wsv train --devices)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"wsv {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # a project file damaged where opening it did not look
        print(f"wsv {args.command}: error: the project database is damaged ({exc}); restore project.wsv from a "
              f"backup", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"wsv {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
