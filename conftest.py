"""Repository-wide pytest setup: hypothesis profiles.

CI runs derandomized (the same examples every run, so a red build is reproducible);
locally hypothesis explores. Neither has a deadline: CPU timing on shared runners
is noise, and performance lives in benchmarks/.
"""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
