"""Shop analytics: orders, customers and products from the shop API, stores from CSV files."""

from dltplus_dagster.project.packaging import bind_package

project, entities, catalog, runner, access_profile = bind_package(__file__, default_profile="dev")
