"""A stand-in for a real board: prints a latency for the architecture given as argument."""

import argparse
import sys
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])
from edgeopt_plugins.spaces import get_space  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("arch")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--fail-on", default=None)
parser.add_argument("--nan-on", default=None)
args = parser.parse_args()
time.sleep(args.sleep)
if args.fail_on and args.fail_on in args.arch:
    print("board disconnected", file=sys.stderr)
    sys.exit(1)
if args.nan_on and args.nan_on in args.arch:
    print("nan")
    sys.exit(0)
print(1.0 + float(get_space("nb201").flops([args.arch])[0]) / 20.0)
