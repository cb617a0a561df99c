"""A code location running the project's jobs on Celery workers (used by test_prod_executors).

The project comes from `DLT_PROJECT_DIR` and the profile from `WORKSPACE__PROFILE`, like the
repo's `definitions.py`; the broker and result backend from `DLTPLUS_CELERY_BROKER` and
`DLTPLUS_CELERY_BACKEND` (the same values the workers are started with).

    dagster job execute -f tests/celery_defs.py -j daily_refresh
"""

from dagster_celery import celery_executor

from dltplus_dagster import build_definitions

defs = build_definitions(
    executor=celery_executor.configured(
        {
            "broker": {"env": "DLTPLUS_CELERY_BROKER"},
            "backend": {"env": "DLTPLUS_CELERY_BACKEND"},
        }
    ),
)
