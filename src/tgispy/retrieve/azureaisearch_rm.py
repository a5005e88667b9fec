"""DSPy 2.4's ``dspy.retrieve.azureaisearch_rm`` (``AzureAISearchRM``): out of scope, it needs
Azure AI Search. Importing it raises an ``ImportError`` that shows the route: serve the
passages over ColBERTv2's protocol (``tgispy serve-rm``) and use ``dspy.ColBERTv2``, or use
``tgispy.retrieve.BM25``.
"""

from tgispy.retrieve._third_party import raise_out_of_scope

raise_out_of_scope("azureaisearch_rm", "AzureAISearchRM", "Azure AI Search")
