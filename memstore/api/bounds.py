"""The largest integers the API takes from a request, in one place (issue 13, item 7).

Every integer field of an input serializer names one of these as its ``max_value``, so
a request with a page of 10**20 or a price of 2**63 gets a 400 with the stable code
``registry.out_of_range`` instead of a database overflow (500). Each bound is far past
any real use and far below PostgreSQL's ``bigint`` (2**63 - 1).

Not here: the real limits of a deployment (pack size, chunk size, uploads per user),
which the services check and answer 413 or 409; these bounds only keep numbers sane.
"""

from __future__ import annotations

__all__ = ["MAX_OFFSET_BYTES", "MAX_PAGE", "MAX_PRICE_MINOR", "MAX_SIZE_BYTES"]

#: Pages of a listing: 10 000 pages of 100 is a million rows, past any catalogue's end.
MAX_PAGE = 10_000

#: A pack's price in minor units: 99 999 999 (999 999.99 in a two-decimal currency) is
#: the largest amount Stripe charges in one payment for most currencies.
MAX_PRICE_MINOR = 99_999_999

#: A size announced for an upload or blob: 1 TiB, past any pack the registry accepts.
MAX_SIZE_BYTES = 2**40

#: An upload offset (``Upload-Offset``) can never exceed a size.
MAX_OFFSET_BYTES = MAX_SIZE_BYTES
