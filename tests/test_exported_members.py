"""The public API is exactly what ``speechbridge.__all__`` says, and each name is what it claims to be."""

from __future__ import annotations

import importlib.metadata
import types

import speechbridge


def test_all_is_sorted_and_complete():
    public = {
        name
        for name in dir(speechbridge)
        if name[0] not in "_@" and not isinstance(getattr(speechbridge, name), types.ModuleType)
    }
    assert set(speechbridge.__all__) - {"__version__"} == public
    assert speechbridge.__all__ == sorted(speechbridge.__all__)


def test_exported_names_come_from_speechbridge():
    for name in speechbridge.__all__:
        member = getattr(speechbridge, name)
        module = getattr(member, "__module__", "speechbridge")
        assert module.startswith(("speechbridge", "pluggy", "typing", "types")), (name, module)


def test_version_matches_the_distribution():
    assert speechbridge.__version__ == importlib.metadata.version("speechbridge")
