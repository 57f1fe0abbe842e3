"""Virtual read paths: fields of a record that come from its associations, not its properties.

* ``associations.<toObjectType>`` (e.g. ``associations.companies``): the id of the record's
  primary associated record of that type, else the first (lowest id) unlabeled one, else None.
* a list field (one with ``items`` in the mapping, so in ``options.item_fields``), e.g.
  ``line_items``: the associated records of that type, each a dict keyed by the item paths,
  ordered by id. HubSpot properties are never lists, so every list field is an association;
  its object type is the path itself unless ``options.associations`` maps the path to one
  (``{quote_lines: line_items}``).

Virtual paths are never sent as properties to read or write.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connectors.base import EntitySpec, ValidationError

PREFIX = "associations."


@dataclass(frozen=True)
class ListField:
    """A virtual list: associated records of ``object`` read with ``properties``."""

    path: str
    object: str
    properties: tuple[str, ...]


@dataclass(frozen=True)
class VirtualFields:
    """The virtual paths one EntitySpec reads."""

    singles: dict[str, str] = field(default_factory=dict)  # path -> associated object type
    lists: dict[str, ListField] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: EntitySpec) -> VirtualFields:
        """The virtual paths among ``spec.fields``; ValidationError names a malformed declaration."""
        item_fields = spec.options.get("item_fields") or {}
        aliases = spec.options.get("associations") or {}
        if not isinstance(item_fields, Mapping) or not isinstance(aliases, Mapping):
            raise ValidationError(f"hubspot: {spec.entity}: item_fields and associations must be mappings",
                                  system="hubspot", field="associations")
        singles: dict[str, str] = {}
        lists: dict[str, ListField] = {}
        for path in spec.fields:
            if path.startswith(PREFIX):
                target = path[len(PREFIX):]
                if not target or "." in target:
                    raise ValidationError(f"hubspot: {spec.entity}: {path!r} must be associations.<objectType>",
                                          system="hubspot", field=path)
                singles[path] = str(aliases.get(path, target))
            elif path in item_fields:
                props = tuple(dict.fromkeys(str(p) for p in item_fields[path] or ()))
                if not props or any(p.startswith(PREFIX) for p in props):
                    raise ValidationError(f"hubspot: {spec.entity}: the items of {path!r} need plain properties",
                                          system="hubspot", field=path)
                lists[path] = ListField(path, str(aliases.get(path, path)), props)
        return cls(singles, lists)

    def __bool__(self) -> bool:
        return bool(self.singles or self.lists)

    def is_virtual(self, path: str) -> bool:
        """Whether ``path`` is filled from associations (and so is no property)."""
        return path in self.singles or path in self.lists or path.startswith(PREFIX)

    def object_types(self) -> list[str]:
        """Associated object types to read, each once, in a stable order."""
        return list(dict.fromkeys([*self.singles.values(), *(f.object for f in self.lists.values())]))

    def properties(self, paths: Iterable[str]) -> list[str]:
        """``paths`` without the virtual ones."""
        return [p for p in paths if not self.is_virtual(p)]
