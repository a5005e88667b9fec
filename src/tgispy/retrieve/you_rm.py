"""DSPy 2.4's ``dspy.retrieve.you_rm`` (``YouRM``): out of scope, it needs the hosted You.com
API. Importing it raises an ``ImportError`` that shows the route: serve the passages over
ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("you_rm", "YouRM", "the hosted You.com API")
