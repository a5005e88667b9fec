"""DSPy 2.4's ``dspy.retrieve.mongodb_atlas_rm`` (``MongoDBAtlasRM``): out of scope, it needs
MongoDB Atlas. Importing it raises an ``ImportError`` that shows the route: serve the passages
over ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("mongodb_atlas_rm", "MongoDBAtlasRM", "MongoDB Atlas")
