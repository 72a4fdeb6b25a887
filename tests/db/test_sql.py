"""catalog.db.sql: the SQL that the two backends spell differently, checked on the backend
under test against the Python it stands for."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select
from support.strategies import STORED_REFERENCES

from catalog.context import Catalog
from catalog.db.sql import familiar_name
from catalog.domain.reference import Named, familiar_string


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(references=st.lists(STORED_REFERENCES, min_size=1, max_size=20))
def test_familiar_name_is_familiar_string(catalog: Catalog, references: list[Named]) -> None:
    with catalog.database.read() as session:
        for reference in references:
            text = str(reference)
            got = session.scalar(select(familiar_name(literal(text))))
            assert got == familiar_string(reference), text
