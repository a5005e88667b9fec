"""DSPy 2.4.17's client classes that tgispy does not serve (public_names.json, scope "error").

A plain tuple, importable without loading any client code (``import tgispy`` reads it).
"""

from __future__ import annotations

__all__ = ["OUT_OF_SCOPE"]

#: hosted proprietary API clients and in-process weight loaders (``HFModel``, ``ChatModuleClient``)
OUT_OF_SCOPE = (
    "AWSAnthropic", "AWSMeta", "AWSMistral", "AWSModel", "AzureOpenAI", "Bedrock",
    "ChatModuleClient", "Clarifai", "Claude", "CloudflareAI", "Cohere", "Databricks", "GROQ",
    "Google", "GoogleVertexAI", "HFModel", "Mistral", "MultiOpenAI", "PremAI", "Sagemaker",
    "Snowflake", "Watsonx", "You",
)  # fmt: skip
