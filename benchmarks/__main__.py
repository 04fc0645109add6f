"""``python -m benchmarks NAME``: onetake beside its baselines, in the same run, JSON out.

  fanout    every channel from one 1080p25 source: naive ffmpegs vs. one expert ffmpeg vs. onetake run
  overhead  onetake run --channels web vs. the same ffmpeg work run directly
  memory    peak memory of the whole process tree for a short and a long source
  storage   upload throughput of a delivery to a local S3 endpoint vs. plain boto3 upload_file
  watch     a burst of clips dropped into a watch folder: throughput, ingest and urgent-lane latency, memory
  analyze   the one-decode analysis vs. a plain decode and PySceneDetect, and its accuracy on generated clips
  framing   the 9:16 short video: following the subject vs. a centre crop, same output
  serve     the dispatch desk: board latency with 10 000 jobs and 50 live connections, upload vs. a plain PUT
  scale     one long source on k = 1, 2, ... pinned Dask workers: speedup, efficiency, chunk costs, 64-worker model
  urgent    breaking news: from a clip's arrival to its first version of web and short vs. an expert's ffmpeg
  compare   two runs' JSON of one benchmark: exit 1 when a ratio got worse than --max-regression allows
"""

from __future__ import annotations

import argparse
import sys

from . import analyze, compare, fanout, framing, memory, overhead, scale, serve, storage, urgent, watch
from .common import CommandFailed

COMMANDS = {"fanout": fanout, "overhead": overhead, "memory": memory, "storage": storage, "watch": watch,
            "analyze": analyze, "framing": framing, "serve": serve, "scale": scale, "urgent": urgent,
            "compare": compare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0],
                           description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.name].main(args)
    except CommandFailed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
