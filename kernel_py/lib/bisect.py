# Binary search over a sorted list (MicroPython has no bisect module).


def bisect_right(a, x):
    """Index of the first element of sorted a that is greater than x."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo
