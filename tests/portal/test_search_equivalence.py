"""The search gives what the previous implementation (``reference_search``) gave: the
same pages, totals, ranking, scores and facet counts, including facets read from columns."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from tests.portal import reference_search
from tests.portal.conftest import Portal

from npfm.catalog import search_index
from npfm.catalog.models import open_catalog
from npfm.portal.facet_index import FacetIndexes
from npfm.portal.search import VectorIndex, search


def assert_same_as_before(sessions: sessionmaker[Session]) -> None:
    """Every query of ``reference_search.queries`` answers as the reference does."""
    indexes, vectors = FacetIndexes(), VectorIndex()
    with sessions() as session:
        generation = search_index.generation(session)
        for query in reference_search.queries():
            found = search(session, query, indexes.at(session, generation), vectors)
            assert found == reference_search.search(session, query), query


def test_same_results_as_before(portal: Portal) -> None:
    assert_same_as_before(open_catalog(portal.url))


def test_same_results_with_facets_from_columns(
        write_portal: tuple[TestClient, str, Portal]) -> None:
    _, url, portal = write_portal
    sessions = open_catalog(url)
    with sessions() as session:
        reference_search.use_columns(session, portal.ids)
    assert_same_as_before(sessions)
    with sessions() as session:
        indexes = FacetIndexes()
        index = indexes.at(session, search_index.generation(session))
        lep = index.matching("facility", "LEP")
        assert index.counts(lep, {})["experiment"] == [("ALEPH", 1)]
