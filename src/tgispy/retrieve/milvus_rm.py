"""DSPy 2.4's ``dspy.retrieve.milvus_rm`` (``MilvusRM``): out of scope, it needs a Milvus
database. Importing it raises an ``ImportError`` that shows the route: serve the passages over
ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("milvus_rm", "MilvusRM", "a Milvus database")
