"""Catalog: the datasets of a project for its active profile, and which destination each is on.

`get_dataset` is the one place a `Dataset` is made: a declared or implied dataset on its
default destination (the first allowed), or on a named one it is allowed on.
"""

from __future__ import annotations

from collections.abc import Iterator

from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.errors import EntityNotFound, InvalidDestination
from dltplus_dagster.project.model import DatasetEntity
from dltplus_dagster.project.project import Project


def get_dataset(
    entities: EntityFactory, name: str, destination_name: str | None = None
) -> Dataset:
    """Dataset `name` on `destination_name`, by default the first destination it is allowed on.

    Raises `EntityNotFound` for an unknown dataset and `InvalidDestination` when the dataset has
    no destination or is not allowed on `destination_name`. Runs no validation (see
    `Catalog.dataset`).
    """
    entity = entities.get_dataset_entity(name)
    allowed = entities.dataset_destinations(name)
    if destination_name is None:
        if not allowed:
            raise InvalidDestination(
                f"dlt.yml: datasets.{name}.destination: no destination is configured for "
                "this dataset and no pipeline writes it; declare `destination: [name]`."
            )
        destination_name = allowed[0]
    elif allowed and destination_name not in allowed:
        raise InvalidDestination(
            f"Dataset '{name}' is not available on destination '{destination_name}'. "
            f"Available destinations: {allowed}"
        )
    return Dataset(entities.project, entities, entity, destination_name)


class Catalog:
    """The datasets of a project for its active profile."""

    def __init__(self, project: Project, entities: EntityFactory) -> None:
        self.project = project
        self.entities = entities

    @classmethod
    def for_project(cls, project: Project) -> Catalog:
        """The catalog of `project`, with its own `EntityFactory`."""
        return cls(project, EntityFactory(project))

    @property
    def datasets(self) -> dict[str, DatasetEntity]:
        """Declared datasets."""
        return dict(self.project.datasets)

    def dataset(self, name: str, destination_name: str | None = None) -> Dataset:
        """Dataset `name` (on `destination_name`), once the validation gate accepts it."""
        from dltplus_dagster.project.validate import dataset_scope, ensure_valid

        # the one gate, as the runner and `validate`: a dataset validate refuses is not read
        ensure_valid(self.project, tables=False, scope=dataset_scope(self.project, name))
        return get_dataset(self.entities, name, destination_name)

    def __getitem__(self, name: str) -> Dataset:
        return self.dataset(name)

    def __getattr__(self, name: str) -> Dataset:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.dataset(name)
        except EntityNotFound as e:
            raise AttributeError(str(e)) from e

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.entities.list_datasets()

    def __iter__(self) -> Iterator[str]:
        return iter(self.entities.list_datasets())

    def __len__(self) -> int:
        return len(self.entities.list_datasets())

    def __str__(self) -> str:
        names = self.entities.list_datasets()
        header = f"Datasets in project {self.project.name} for profile {self.project.current_profile}:"
        if not names:
            return f"{header}\nNo datasets found"
        lines = []
        for n in names:
            dests = self.entities.dataset_destinations(n)
            lines.append(f"  {n}@{dests[0] if dests else '(no destination)'}")
        return "\n".join([header, *lines])
