"""Settings for the web processes ``bench_pages`` runs: the product's own, with each response
saying how many SQL statements its request ran (``X-Bench-Queries``). Never used in production."""

from trial.settings import *  # noqa: F403
from trial.settings import MIDDLEWARE as _PRODUCT_MIDDLEWARE

MIDDLEWARE = ["bench.middleware.QueryCountMiddleware", *_PRODUCT_MIDDLEWARE]
