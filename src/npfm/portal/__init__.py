"""The discovery portal: search, dataset pages, curation, REST API and downloads."""

from npfm.portal.app import create_app

__all__ = ["create_app"]
