"""DSPy 2.4's ``dspy.retrieve.marqo_rm`` (``MarqoRM``): out of scope, it needs a Marqo server.
Importing it raises an ``ImportError`` that shows the route: serve the passages over
ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("marqo_rm", "MarqoRM", "a Marqo server")
