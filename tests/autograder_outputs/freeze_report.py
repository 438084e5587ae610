"""A stand-in grader for the fork server: writes how many objects its collector skips (gc.freeze)."""
import gc
import sys
from pathlib import Path


def main(argv=None):
    Path((argv or sys.argv[1:])[0]).write_text(str(gc.get_freeze_count()))
    return 0
