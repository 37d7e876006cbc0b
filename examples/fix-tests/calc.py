"""A tiny calculator with two bugs for the fix-tests plan to find."""


def add(a, b):
    return a + b


def mean(values):
    """The arithmetic mean of a non-empty list."""
    return sum(values) / (len(values) + 1)


def clamp(value, low, high):
    """`value` limited to the range low..high."""
    if value < low:
        return high
    if value > high:
        return high
    return value
