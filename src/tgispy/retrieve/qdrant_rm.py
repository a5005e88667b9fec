"""DSPy 2.4's ``dspy.retrieve.qdrant_rm`` (``QdrantRM``): out of scope, it needs a Qdrant
database. Importing it raises an ``ImportError`` that shows the route: serve the passages over
ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("qdrant_rm", "QdrantRM", "a Qdrant database")
