"""``knowledge``: BM25 search over Python's own help topics (``pydoc_data.topics``)."""

from mcp_servers.knowledge.server import SearchHit, SearchResults, Topic, create_server

__all__ = ["SearchHit", "SearchResults", "Topic", "create_server"]
