"""Job functions for the worker-pool tests (imported inside worker processes)."""

import os
import time


def echo(x):
    return x


def sleep(seconds):
    time.sleep(seconds)
    return "slept"


def die(_):
    os._exit(13)  # a worker dying mid-job, as a segfaulting decoder would


def boom(_):
    raise ValueError("PLANTED-SECRET must not be reported")


def niceness(_):
    return os.nice(0)


def reverse_payload(tag, payload):
    """A send-once job: the payload arrives as bytes, other bytes go back."""
    return (tag, len(payload)), payload[::-1]


def keep_payload(tag, payload):
    return tag, None


def die_with_payload(_, payload):
    os._exit(13)
