"""Retry delays: pure arithmetic, with randomness passed in so tests need no sleeps."""


def delay(attempts, base, cap, jitter="none", rng=None):
    """Seconds to wait after failure number `attempts`: min(base ^ attempts, cap).

    With jitter 'full' the delay is drawn uniformly from [0, that value] (AWS's "full jitter"),
    which spreads retries of jobs that failed together; `rng` is a random.Random-like object.
    """
    try:
        seconds = min(float(base) ** attempts, float(cap))
    except OverflowError:
        seconds = float(cap)
    if jitter == "full":
        seconds = rng.uniform(0, seconds)
    return seconds
