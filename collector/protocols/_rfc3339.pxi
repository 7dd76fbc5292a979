# cython: language_level=3
"""RFC 3339 UTC date-times for the compiled decoders: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` as the Python
decoders write them (``rfc3339_from_ns``, ``rfc3339_of_us``: microseconds, ``Z``), the text of the
last second kept.

Include with ``include "_rfc3339.pxi"``. Valid for seconds 0 to 253402300799 (the years 1970-9999);
the caller checks the range.
"""

from libc.stdint cimport int64_t
from libc.string cimport memcpy

#: The first second past the year 9999 (Python's datetime ends there).
DEF RFC3339_END = 253402300800


cdef struct Clock:
    int64_t second  # the second whose text is cached (-1: none)
    char text[20]   # YYYY-MM-DDTHH:MM:SS of that second
    char stamp[32]  # the last time written: YYYY-MM-DDTHH:MM:SS.ffffffZ (27 bytes)


cdef inline void civil_date(int64_t days, int* year, int* month, int* day) noexcept nogil:
    """The proleptic Gregorian date ``days`` after 1970-01-01 (Howard Hinnant's algorithm)."""
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    day[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    month[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    year[0] = <int>(yoe + era * 400 + (1 if month[0] <= 2 else 0))


cdef inline void put_digits(char* out, int64_t value, int width) noexcept nogil:
    """``value`` (>= 0) as ``width`` decimal digits, zero-padded."""
    cdef int k
    for k in range(width - 1, -1, -1):
        out[k] = <char>(48 + value % 10)
        value //= 10


cdef inline void clock_set(Clock* clock, int64_t second, int micros) noexcept nogil:
    """``clock.stamp`` = the date-time of ``second`` and ``micros`` (0-999999)."""
    cdef int year, month, day
    cdef int64_t rest
    cdef char* t = clock.text
    if second != clock.second:
        civil_date(second // 86400, &year, &month, &day)
        rest = second % 86400
        put_digits(t, year, 4)
        t[4] = b'-'
        put_digits(t + 5, month, 2)
        t[7] = b'-'
        put_digits(t + 8, day, 2)
        t[10] = b'T'
        put_digits(t + 11, rest // 3600, 2)
        t[13] = b':'
        put_digits(t + 14, rest // 60 % 60, 2)
        t[16] = b':'
        put_digits(t + 17, rest % 60, 2)
        clock.second = second
    memcpy(clock.stamp, clock.text, 19)
    clock.stamp[19] = b'.'
    put_digits(clock.stamp + 20, micros, 6)
    clock.stamp[26] = b'Z'
