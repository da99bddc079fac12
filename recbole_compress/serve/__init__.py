"""Serving a trained model from its artifact alone: ``recbole_compress.load(run folder)``
and ``Recommender.recommend``; the ``recommend`` command. See docs/serve.md."""

from recbole_compress.serve.recommender import Recommender, load

__all__ = ["Recommender", "load"]
