"""The language-model contract (``base``) beside its backends: the packaged default model (``default``),
local transformers (``local``, ``hf``), an OpenAI-compatible server (``http``) and a tiny test model (``tiny``);
``factory.build_llm`` picks one from the settings' values.
"""
