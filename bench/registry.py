"""One generic registry for everything a user selects by name: methods, metrics, dataset formats.

Registration records metadata next to the object (tags such as ``ablation``, aliases, free-form
fields), refuses duplicate names and objects of the wrong base class, and answers an unknown name with
the available names and the closest match. Selection understands ``all``, tag names, comma lists and
shell globs, so ``--methods 'daw*,xception'`` and ``--methods ablations`` mean what a user expects.
Third-party packages add entries through an entry-point group without touching this code base.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from bench.errors import BenchError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its name, tags, aliases and metadata."""

    name: str
    obj: T
    tags: frozenset[str] = frozenset()
    aliases: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A name -> object table with typed registration, friendly lookup and pattern selection.

    ``kind`` names the things held ("method", "metric") in messages. ``base`` (optional) is the class
    every registered class must subclass. ``entry_point_group`` (optional) is searched once, on first
    use, for third-party entries. ``loader`` (optional) runs once, on first use, to import the built-in
    modules whose decorators fill the registry. ``excluded_from_all`` lists tags whose entries ``all``
    leaves out (they are chosen by name, glob or tag instead).
    """

    def __init__(
        self,
        kind: str,
        *,
        base: type | None = None,
        entry_point_group: str | None = None,
        loader: Callable[[], None] | None = None,
        excluded_from_all: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group
        self._loader = loader
        self.excluded_from_all = frozenset(excluded_from_all)
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = loader is None and entry_point_group is None

    # ----------------------------------------------------------------------------------- registration
    def register(
        self,
        name: str | None = None,
        *,
        tags: Iterable[str] = (),
        aliases: Iterable[str] = (),
        **meta: Any,
    ) -> Callable[[T], T]:
        """Decorator form of `add`. Without ``name``, a class's ``name`` attribute is used."""

        def decorator(obj: T) -> T:
            self.add(name if name is not None else _own_name(obj, self.kind), obj,
                     tags=tags, aliases=aliases, **meta)
            return obj

        return decorator

    def add(
        self,
        name: str,
        obj: T,
        *,
        tags: Iterable[str] = (),
        aliases: Iterable[str] = (),
        **meta: Any,
    ) -> Entry[T]:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"A {self.kind} needs a non-empty string name, got {name!r}.")
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"Cannot register {obj!r} as {self.kind} {name!r}: "
                            f"it must be a subclass of {self.base.__qualname__}.")
        aliases = tuple(aliases)
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind.capitalize()} name {key!r} is already registered "
                                 f"(by {self._describe(self._resolve_key(key))}); choose another name.")
        entry = Entry(name=name, obj=obj, tags=frozenset(tags), aliases=aliases, meta=dict(meta))
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def remove(self, name: str) -> Entry[T]:
        """Unregister ``name`` (a name or alias) with its aliases and return its entry; e.g. a test's
        teardown of a throwaway entry. An unknown name is an `UnknownNameError`."""
        entry = self.entry(name)
        del self._entries[entry.name]
        for alias in entry.aliases:
            del self._aliases[alias]
        return entry

    # ----------------------------------------------------------------------------------- lookup
    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        self._ensure_loaded()
        key = self._resolve_key(name)
        if key is None:
            raise UnknownNameError(self._unknown_message(name))
        return self._entries[key]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return isinstance(name, str) and self._resolve_key(name) is not None

    def __iter__(self) -> Iterator[str]:
        self._ensure_loaded()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def names(self, *, tag: str | None = None) -> list[str]:
        self._ensure_loaded()
        return [n for n, e in self._entries.items() if tag is None or tag in e.tags]

    def entries(self) -> list[Entry[T]]:
        self._ensure_loaded()
        return list(self._entries.values())

    def tags(self) -> set[str]:
        self._ensure_loaded()
        return {t for e in self._entries.values() for t in e.tags}

    # ----------------------------------------------------------------------------------- selection
    def select(self, spec: str | Iterable[str]) -> list[str]:
        """Names chosen by a selection: ``all``, a tag (or its plural), a name or alias, or a glob.

        ``spec`` is a comma-separated string or a sequence of such tokens. The result keeps registration
        order for ``all``/tags/globs and the user's order otherwise, without duplicates. A token that
        selects nothing is an error naming the token and the valid choices.
        """
        self._ensure_loaded()
        tokens = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec)]
        tokens = [t for t in tokens if t]
        if not tokens:
            raise BenchError(f"Empty {self.kind} selection. {self._choices_sentence()}")
        chosen: dict[str, None] = {}
        for token in tokens:
            for name in self._select_token(token):
                chosen.setdefault(name, None)
        return list(chosen)

    def _select_token(self, token: str) -> list[str]:
        if token == "all":
            return [n for n, e in self._entries.items() if not (e.tags & self.excluded_from_all)]
        tag = _tag_of(token, self.tags())
        if tag is not None:
            return [n for n, e in self._entries.items() if tag in e.tags]
        key = self._resolve_key(token)
        if key is not None:
            return [key]
        if any(ch in token for ch in "*?["):
            hits = [n for n, e in self._entries.items()
                    if fnmatch.fnmatchcase(n, token) or any(fnmatch.fnmatchcase(a, token) for a in e.aliases)]
            if hits:
                return hits
            raise UnknownNameError(
                f"The pattern {token!r} matches no {self.kind}. {self._choices_sentence()}")
        raise UnknownNameError(self._unknown_message(token))

    # ----------------------------------------------------------------------------------- internals
    def _resolve_key(self, name: str) -> str | None:
        if name in self._entries:
            return name
        return self._aliases.get(name)

    def _describe(self, key: str | None) -> str:
        if key is None:
            return "an alias"
        obj = self._entries[key].obj
        qualname = getattr(obj, "__qualname__", None)
        return f"{obj.__module__}.{qualname}" if qualname else repr(obj)

    def _unknown_message(self, name: str) -> str:
        candidates = list(self._entries) + list(self._aliases)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
        hint = f" Did you mean {self._aliases.get(close[0], close[0])!r}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} {self._choices_sentence()}"

    def _choices_sentence(self) -> str:
        names = ", ".join(self._entries) or "(none registered)"
        extra = ["'all'"] + [f"'{t}s'" if not t.endswith("s") else f"'{t}'" for t in sorted(self.tags())]
        return f"Available {self.kind}s: {names} (or {', '.join(extra)}, comma lists and globs)."

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: a loader that looks names up must not recurse
        if self._loader is not None:
            self._loader()
        if self.entry_point_group is not None:
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=self.entry_point_group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not take the harness down with it
                warnings.warn(f"Skipping {self.kind} plug-in {ep.name!r} ({ep.value}): it failed to "
                              f"import: {exc}", stacklevel=2)
                continue
            # An entry point may name a module (whose decorators registered it) or the object itself.
            if isinstance(obj, type) and ep.name not in self._entries and obj not in self._objects():
                try:
                    self.add(getattr(obj, "name", ep.name), obj)
                except (TypeError, ValueError) as exc:
                    warnings.warn(f"Skipping {self.kind} plug-in {ep.name!r}: {exc}", stacklevel=2)

    def _objects(self) -> list[T]:
        return [e.obj for e in self._entries.values()]


def _own_name(obj: Any, kind: str) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"Register {obj!r} with an explicit name or give it a `name` attribute ({kind}).")
    return name


def _tag_of(token: str, tags: set[str]) -> str | None:
    """A token names a tag when it equals it or its plural (``ablation`` / ``ablations``)."""
    if token in tags:
        return token
    if token.endswith("s") and token[:-1] in tags:
        return token[:-1]
    return None
