# The two README commands. Both set everything up first (tools/bootstrap.sh is idempotent).
.PHONY: demo test test-slow check setup

setup:
	@bash tools/bootstrap.sh

demo: setup
	.venv/bin/rocknet simulate

# The static checks `make test` runs before the tests (config in pyproject.toml).
check: setup
	.venv/bin/ruff check .
	.venv/bin/python -m mypy
	.venv/bin/python tools/make_package_json.py --check

# The suite without the long end-to-end tests (marked `slow`); CI runs those too (.ci/run).
test: check
	.venv/bin/python -m pytest -n 2 -q -m "not slow"

test-slow: setup
	.venv/bin/python -m pytest -n 2 -q -m slow
